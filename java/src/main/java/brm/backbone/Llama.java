package brm.backbone;

import brm.backend.Backend;

import java.util.ArrayList;
import java.util.List;

/**
 * Llama (transformers' LlamaModel): the pre-RMSNorm {@link Decoder} with embed_tokens,
 * input_layernorm / post_attention_layernorm, attention with q/k/v/o_proj (full rotary, causal,
 * GQA), the SwiGLU MLP gate/up/down_proj, the sequential residual, and norm.
 */
public final class Llama implements DecoderBackbone {
    private final LlamaConfig config;
    private final Decoder decoder;

    private Llama(LlamaConfig config, Decoder decoder) {
        this.config = config;
        this.decoder = decoder;
    }

    static Llama load(LlamaConfig c, Checkpoint ckpt, Linears linears, Backend backend) {
        int hidden = c.hiddenSize();
        Rotary rotary = Rotary.create(backend, c.headDim(), c.ropeTheta(), c.maxPositionEmbeddings());
        List<Decoder.Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String l = c.prefix() + "layers." + i + ".";
            layers.add(new Decoder.Layer(
                    RmsNorm.load(backend, ckpt, l + "input_layernorm", hidden, c.rmsNormEps()),
                    RmsNorm.load(backend, ckpt, l + "post_attention_layernorm", hidden, c.rmsNormEps()),
                    Attention.separate(backend, linears.load(l + "self_attn.q_proj"), linears.load(l + "self_attn.k_proj"),
                            linears.load(l + "self_attn.v_proj"), linears.load(l + "self_attn.o_proj"), rotary,
                            c.numHeads(), c.numKvHeads(), c.headDim(), true),
                    new SwiGluMlp(backend, linears.load(l + "mlp.gate_proj"), linears.load(l + "mlp.up_proj"),
                            linears.load(l + "mlp.down_proj"))));
        }
        return new Llama(c, new Decoder(backend,
                Embeddings.words(backend, ckpt, c.prefix() + "embed_tokens.weight", c.vocabSize(), hidden),
                layers,
                RmsNorm.load(backend, ckpt, c.prefix() + "norm", hidden, c.rmsNormEps()),
                false, hidden, linears.training()));
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    @Override
    public Decoder decoder() {
        return decoder;
    }
}
