package brm.backbone;

import java.util.ArrayList;
import java.util.List;

/**
 * GPT-NeoX / Pythia (transformers' GPTNeoXConfig). Head dimension D = hidden / heads; rotary on the
 * first rotaryDims = int(D · rotary_pct) dims of each head.
 */
public record GptNeoXConfig(int vocabSize, int hiddenSize, int numLayers, int numHeads, int intermediateSize,
                            double rotaryPct, double rotaryBase, int maxPositionEmbeddings, double layerNormEps,
                            boolean parallelResidual, boolean attentionBias, boolean tieWordEmbeddings,
                            double initializerRange, TokenIds tokens) implements ModelConfig {

    static GptNeoXConfig parse(ConfigFields f) {
        f.oneOf("hidden_act", "gelu", "gelu");
        int hidden = f.positive("hidden_size", 6144), heads = f.positive("num_attention_heads", 64);
        if (hidden % heads != 0) throw f.error("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        ConfigFields.Rope rope = f.rope("rotary_emb_base", 10000, "rotary_pct", 0.25);
        var config = new GptNeoXConfig(f.positive("vocab_size", 50432), hidden, f.positive("num_hidden_layers", 44), heads,
                f.positive("intermediate_size", 24576), rope.fraction(), rope.theta(), f.positive("max_position_embeddings", 2048),
                f.number("layer_norm_eps", 1e-5), f.bool("use_parallel_residual", true), f.bool("attention_bias", true),
                f.bool("tie_word_embeddings", false), f.number("initializer_range", 0.02),
                new TokenIds(f.tokenId("bos_token_id", 0), f.tokenIds("eos_token_id", 2), f.tokenId("pad_token_id", null)));
        if (config.rotaryDims() % 2 != 0 || config.rotaryDims() == 0)
            throw f.error("rotary dims " + config.rotaryDims() + " (head size " + config.headDim() + " × rotary fraction "
                    + rope.fraction() + ") must be even and nonzero");
        return config;
    }

    @Override
    public String modelType() { return "gpt_neox"; }

    @Override
    public String prefix() { return "gpt_neox."; }

    @Override
    public boolean causal() { return true; }

    public int headDim() {
        return hiddenSize / numHeads;
    }

    public int rotaryDims() {
        return (int) (headDim() * rotaryPct);
    }

    @Override
    public List<LinearModule> linearModules() {
        List<LinearModule> modules = new ArrayList<>();
        for (int i = 0; i < numLayers; i++) {
            String layer = prefix() + "layers." + i + ".";
            modules.add(new LinearModule(layer + "attention.query_key_value", hiddenSize, 3 * hiddenSize, attentionBias));
            modules.add(new LinearModule(layer + "attention.dense", hiddenSize, hiddenSize, attentionBias));
            modules.add(new LinearModule(layer + "mlp.dense_h_to_4h", hiddenSize, intermediateSize, true));
            modules.add(new LinearModule(layer + "mlp.dense_4h_to_h", intermediateSize, hiddenSize, true));
        }
        modules.add(score());
        return List.copyOf(modules);
    }
}
