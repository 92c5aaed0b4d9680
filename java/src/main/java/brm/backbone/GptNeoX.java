package brm.backbone;

import brm.backend.Backend;

import java.util.ArrayList;
import java.util.List;

/**
 * GPT-NeoX / Pythia (transformers' GPTNeoXModel): the pre-LayerNorm {@link Decoder} with
 * embed_in, input_layernorm / post_attention_layernorm, attention with the fused query_key_value
 * (partial rotary, causal), the GELU MLP dense_h_to_4h / dense_4h_to_h, final_layer_norm, and
 * the parallel residual when use_parallel_residual (Pythia) or the sequential one otherwise.
 */
public final class GptNeoX implements DecoderBackbone {
    private final GptNeoXConfig config;
    private final Decoder decoder;

    private GptNeoX(GptNeoXConfig config, Decoder decoder) {
        this.config = config;
        this.decoder = decoder;
    }

    static GptNeoX load(GptNeoXConfig c, Checkpoint ckpt, Linears linears, Backend backend) {
        int hidden = c.hiddenSize();
        Rotary rotary = Rotary.create(backend, c.rotaryDims(), c.rotaryBase(), c.maxPositionEmbeddings());
        List<Decoder.Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String l = c.prefix() + "layers." + i + ".";
            layers.add(new Decoder.Layer(
                    LayerNorm.load(backend, ckpt, l + "input_layernorm", hidden, c.layerNormEps()),
                    LayerNorm.load(backend, ckpt, l + "post_attention_layernorm", hidden, c.layerNormEps()),
                    Attention.fused(backend, linears.load(l + "attention.query_key_value"), linears.load(l + "attention.dense"),
                            rotary, c.numHeads(), c.headDim()),
                    new GeluMlp(backend, linears.load(l + "mlp.dense_h_to_4h"), linears.load(l + "mlp.dense_4h_to_h"))));
        }
        return new GptNeoX(c, new Decoder(backend,
                Embeddings.words(backend, ckpt, c.prefix() + "embed_in.weight", c.vocabSize(), hidden),
                layers,
                LayerNorm.load(backend, ckpt, c.prefix() + "final_layer_norm", hidden, c.layerNormEps()),
                c.parallelResidual(), hidden, linears.training()));
    }

    @Override
    public GptNeoXConfig config() {
        return config;
    }

    @Override
    public Decoder decoder() {
        return decoder;
    }
}
