package brm.backbone;

import java.util.ArrayList;
import java.util.List;

/**
 * Llama (transformers' LlamaConfig): head_dim defaults to hidden / heads, num_key_value_heads to the
 * number of heads (GQA when fewer); rotary over the whole head. attention_bias and mlp_bias add
 * biases to the attention and MLP projections, as in HF.
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
                          int numKvHeads, int headDim, double rmsNormEps, double ropeTheta, int maxPositionEmbeddings,
                          boolean tieWordEmbeddings, boolean attentionBias, boolean mlpBias, double initializerRange,
                          TokenIds tokens) implements ModelConfig {

    static LlamaConfig parse(ConfigFields f) {
        f.oneOf("hidden_act", "silu", "silu");
        int hidden = f.positive("hidden_size", 4096), heads = f.positive("num_attention_heads", 32);
        if (!f.has("head_dim") && hidden % heads != 0)
            throw f.error("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        int kvHeads = f.positive("num_key_value_heads", heads);
        if (heads % kvHeads != 0) throw f.error("num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        int headDim = f.positive("head_dim", hidden / heads);
        if (headDim % 2 != 0) throw f.error("head_dim " + headDim + " must be even for the rotary embedding");
        ConfigFields.Rope rope = f.rope("rope_theta", 10000, "partial_rotary_factor", 1);
        if (rope.fraction() != 1) throw f.error("partial_rotary_factor " + rope.fraction() + " is not supported for llama (brm rotates the whole head)");
        return new LlamaConfig(f.positive("vocab_size", 32000), hidden, f.positive("intermediate_size", 11008),
                f.positive("num_hidden_layers", 32), heads, kvHeads, headDim, f.number("rms_norm_eps", 1e-6), rope.theta(),
                f.positive("max_position_embeddings", 2048), f.bool("tie_word_embeddings", false), f.bool("attention_bias", false),
                f.bool("mlp_bias", false), f.number("initializer_range", 0.02),
                new TokenIds(f.tokenId("bos_token_id", 1), f.tokenIds("eos_token_id", 2), f.tokenId("pad_token_id", null)));
    }

    @Override
    public String modelType() { return "llama"; }

    @Override
    public String prefix() { return "model."; }

    @Override
    public boolean causal() { return true; }

    @Override
    public List<LinearModule> linearModules() {
        List<LinearModule> modules = new ArrayList<>();
        int q = numHeads * headDim, kv = numKvHeads * headDim;
        for (int i = 0; i < numLayers; i++) {
            String layer = prefix() + "layers." + i + ".";
            modules.add(new LinearModule(layer + "self_attn.q_proj", hiddenSize, q, attentionBias));
            modules.add(new LinearModule(layer + "self_attn.k_proj", hiddenSize, kv, attentionBias));
            modules.add(new LinearModule(layer + "self_attn.v_proj", hiddenSize, kv, attentionBias));
            modules.add(new LinearModule(layer + "self_attn.o_proj", q, hiddenSize, attentionBias));
            modules.add(new LinearModule(layer + "mlp.gate_proj", hiddenSize, intermediateSize, mlpBias));
            modules.add(new LinearModule(layer + "mlp.up_proj", hiddenSize, intermediateSize, mlpBias));
            modules.add(new LinearModule(layer + "mlp.down_proj", intermediateSize, hiddenSize, mlpBias));
        }
        modules.add(score());
        return List.copyOf(modules);
    }
}
