package brm.backbone;

import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * GPT-NeoX / Pythia (transformers' GPTNeoXModel), pre-LayerNorm decoder:
 *   x = embed_in[ids]
 *   per layer, a = attention(input_layernorm(x)) (fused qkv, partial rotary, causal):
 *     parallel residual (Pythia):  x = x + a + mlp(post_attention_layernorm(x))
 *     sequential:                  x = x + a;  x = x + mlp(post_attention_layernorm(x))
 *   h = final_layer_norm(x)
 * The last MLP output of a layer is added into x by the next norm (fused add + LayerNorm).
 */
public final class GptNeoX implements Backbone {
    private record Layer(LayerNorm inputNorm, LayerNorm postAttentionNorm, Attention attention, GeluMlp mlp) {}

    private final GptNeoXConfig config;
    private final Backend backend;
    private final Embeddings embeddings;
    private final List<Layer> layers;
    private final LayerNorm finalNorm;
    private final Workspace ws;

    private GptNeoX(GptNeoXConfig config, Backend backend, Embeddings embeddings, List<Layer> layers, LayerNorm finalNorm) {
        this.config = config;
        this.backend = backend;
        this.embeddings = embeddings;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.ws = new Workspace(backend);
    }

    static GptNeoX load(GptNeoXConfig c, Checkpoint ckpt, Linears linears, Backend backend) {
        int hidden = c.hiddenSize();
        Rotary rotary = Rotary.create(backend, c.rotaryDims(), c.rotaryBase(), c.maxPositionEmbeddings());
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String l = c.prefix() + "layers." + i + ".";
            layers.add(new Layer(
                    LayerNorm.load(backend, ckpt, l + "input_layernorm", hidden, c.layerNormEps()),
                    LayerNorm.load(backend, ckpt, l + "post_attention_layernorm", hidden, c.layerNormEps()),
                    Attention.fused(backend, linears.load(l + "attention.query_key_value"), linears.load(l + "attention.dense"),
                            rotary, c.numHeads(), c.headDim()),
                    new GeluMlp(backend, linears.load(l + "mlp.dense_h_to_4h"), linears.load(l + "mlp.dense_4h_to_h"))));
        }
        return new GptNeoX(c, backend,
                Embeddings.words(backend, ckpt, c.prefix() + "embed_in.weight", c.vocabSize(), hidden),
                List.copyOf(layers),
                LayerNorm.load(backend, ckpt, c.prefix() + "final_layer_norm", hidden, c.layerNormEps()));
    }

    @Override
    public GptNeoXConfig config() {
        return config;
    }

    @Override
    public Tensor forward(Packing p, int[] ids) {
        int n = p.tokens(), hidden = config.hiddenSize();
        Tensor x = ws.get("x", n, hidden), normed = ws.get("normed", n, hidden);
        Tensor attn = ws.get("attention", n, hidden), mlp = ws.get("mlp", n, hidden);
        embeddings.forward(p, ids, x);
        Tensor pending = null;
        for (Layer l : layers) {
            l.inputNorm.forward(x, pending, normed);
            l.attention.forward(p, normed, ws, attn);
            if (config.parallelResidual()) {
                l.postAttentionNorm.forward(x, null, normed);
                l.mlp.forward(normed, ws, mlp);
                backend.add(x, attn, x);
            } else {
                l.postAttentionNorm.forward(x, attn, normed);
                l.mlp.forward(normed, ws, mlp);
            }
            pending = mlp;
        }
        Tensor out = ws.get("out", n, hidden);
        finalNorm.forward(x, pending, out);
        return out;
    }
}
