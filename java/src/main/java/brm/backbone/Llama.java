package brm.backbone;

import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Llama (transformers' LlamaModel), pre-RMSNorm decoder:
 *   x = embed_tokens[ids]
 *   per layer: x = x + o_proj(attention(input_layernorm(x)))   (q/k/v_proj, full rotary, causal, GQA)
 *              x = x + down(silu(gate(n)) · up(n)), n = post_attention_layernorm(x)
 *   h = norm(x)
 * Each residual add is fused into the norm that follows it.
 */
public final class Llama implements Backbone {
    private record Layer(RmsNorm inputNorm, RmsNorm postAttentionNorm, Attention attention, SwiGluMlp mlp) {}

    private final LlamaConfig config;
    private final Embeddings embeddings;
    private final List<Layer> layers;
    private final RmsNorm finalNorm;
    private final Workspace ws;

    private Llama(LlamaConfig config, Backend backend, Embeddings embeddings, List<Layer> layers, RmsNorm finalNorm) {
        this.config = config;
        this.embeddings = embeddings;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.ws = new Workspace(backend);
    }

    static Llama load(LlamaConfig c, Checkpoint ckpt, Linears linears, Backend backend) {
        int hidden = c.hiddenSize();
        Rotary rotary = Rotary.create(backend, c.headDim(), c.ropeTheta(), c.maxPositionEmbeddings());
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String l = c.prefix() + "layers." + i + ".";
            layers.add(new Layer(
                    RmsNorm.load(backend, ckpt, l + "input_layernorm", hidden, c.rmsNormEps()),
                    RmsNorm.load(backend, ckpt, l + "post_attention_layernorm", hidden, c.rmsNormEps()),
                    Attention.separate(backend, linears.load(l + "self_attn.q_proj"), linears.load(l + "self_attn.k_proj"),
                            linears.load(l + "self_attn.v_proj"), linears.load(l + "self_attn.o_proj"), rotary,
                            c.numHeads(), c.numKvHeads(), c.headDim(), true),
                    new SwiGluMlp(backend, linears.load(l + "mlp.gate_proj"), linears.load(l + "mlp.up_proj"),
                            linears.load(l + "mlp.down_proj"))));
        }
        return new Llama(c, backend,
                Embeddings.words(backend, ckpt, c.prefix() + "embed_tokens.weight", c.vocabSize(), hidden),
                List.copyOf(layers),
                RmsNorm.load(backend, ckpt, c.prefix() + "norm", hidden, c.rmsNormEps()));
    }

    @Override
    public LlamaConfig config() {
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
            l.postAttentionNorm.forward(x, attn, normed);
            l.mlp.forward(normed, ws, mlp);
            pending = mlp;
        }
        Tensor out = ws.get("out", n, hidden);
        finalNorm.forward(x, pending, out);
        return out;
    }
}
