package brm.backbone;

import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * BERT encoder (transformers' BertModel without BertPooler), post-LayerNorm, bidirectional:
 *   x = LayerNorm(word[ids] + position[pos] + token_type[0])
 *   per layer: u = x + dense(attention(x));  x1 = LayerNorm_attn(u)      (query/key/value, no rotary)
 *              v = x1 + output.dense(gelu(intermediate.dense(x1)));  x' = LayerNorm_out(v)
 * Each sequence attends only to itself: packing replaces the padding mask.
 * Backward, per layer from the top, dx' the gradient of its output:
 *   dv = LNoutᵀ(dx');  dx1 = dv + mlpᵀ(dv);  du = LNattnᵀ(dx1);  dx = du + attentionᵀ(du)
 * The lowest layer with a trained update computes no gradient for its input, the layers below
 * none at all. Workspace of layer i: "x" its input, "u", "x1", "v", and the branches "a", "m".
 */
public final class Bert implements Backbone {
    private record Layer(Attention attention, LayerNorm attentionNorm, GeluMlp mlp, LayerNorm outputNorm) {
        boolean trainable() {
            return attention.trainable() || mlp.trainable();
        }
    }

    private final BertConfig config;
    private final Backend backend;
    private final Embeddings embeddings;
    private final List<Layer> layers;
    private final Layers ws;

    private Bert(BertConfig config, Backend backend, Embeddings embeddings, List<Layer> layers, boolean training) {
        this.config = config;
        this.backend = backend;
        this.embeddings = embeddings;
        this.layers = layers;
        this.ws = new Layers(backend, layers.size(), training);
    }

    static Bert load(BertConfig c, Checkpoint ckpt, Linears linears, Backend backend) {
        int hidden = c.hiddenSize();
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String l = c.prefix() + "encoder.layer." + i + ".";
            String self = l + "attention.self.";
            layers.add(new Layer(
                    Attention.separate(backend, linears.load(self + "query"), linears.load(self + "key"), linears.load(self + "value"),
                            linears.load(l + "attention.output.dense"), null, c.numHeads(), c.numHeads(), c.headDim(), false),
                    LayerNorm.load(backend, ckpt, l + "attention.output.LayerNorm", hidden, c.layerNormEps()),
                    new GeluMlp(backend, linears.load(l + "intermediate.dense"), linears.load(l + "output.dense")),
                    LayerNorm.load(backend, ckpt, l + "output.LayerNorm", hidden, c.layerNormEps())));
        }
        return new Bert(c, backend, Embeddings.bert(backend, ckpt, c), List.copyOf(layers), linears.training());
    }

    @Override
    public BertConfig config() {
        return config;
    }

    @Override
    public Tensor forward(Packing p, int[] ids) {
        int n = p.tokens(), hidden = config.hiddenSize();
        Tensor x = ws.of(0).get("x", n, hidden);
        embeddings.forward(p, ids, x);
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            Workspace w = ws.of(i);
            Tensor u = w.get("u", n, hidden), x1 = w.get("x1", n, hidden), v = w.get("v", n, hidden);
            Tensor a = w.get("a", n, hidden), m = w.get("m", n, hidden), next = ws.of(i + 1).get("x", n, hidden);
            l.attention.forward(p, x, w, a);
            backend.add(x, a, u);
            l.attentionNorm.forward(u, x1);
            l.mlp.forward(x1, w, m);
            backend.add(x1, m, v);
            l.outputNorm.forward(v, next);
            x = next;
        }
        return x;
    }

    @Override
    public void backward(Packing p, Tensor dHidden) {
        ws.checkTraining();
        int lowest = 0;
        while (lowest < layers.size() && !layers.get(lowest).trainable()) lowest++;
        int n = p.tokens(), hidden = config.hiddenSize();
        Tensor dx = dHidden;
        for (int i = layers.size() - 1; i >= lowest; i--) {
            Layer l = layers.get(i);
            Workspace w = ws.of(i);
            boolean below = i > lowest;
            Tensor dv = ws.grads.zeroed("dv", n, hidden);
            l.outputNorm.backward(w.get("v", n, hidden), dx, dv);
            boolean toAttention = below || l.attention.trainable();
            l.mlp.backward(w.get("x1", n, hidden), w, ws.grads, dv, toAttention ? dv : null);
            if (!toAttention) continue;
            Tensor du = ws.grads.zeroed(i % 2 == 0 ? "du.even" : "du.odd", n, hidden);
            l.attentionNorm.backward(w.get("u", n, hidden), dv, du);
            l.attention.backward(p, w.get("x", n, hidden), w, ws.grads, du, below ? du : null);
            dx = du;
        }
    }
}
