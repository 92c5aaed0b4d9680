package brm.backbone;

import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;

import java.util.List;

/**
 * The pre-norm decoder stack that GPT-NeoX and Llama share:
 *   x = embed[ids]
 *   per layer, a = attention(norm1(x)):
 *     parallel residual (Pythia):  x' = x + a + mlp(norm2(x))
 *     sequential (Llama, NeoX):    h = x + a;  x' = h + mlp(norm2(h))
 *   out = finalNorm(x)
 * Backward, per layer from the top, dx' the gradient of its output (updated in place to dx):
 *   parallel:    dx = dx' + norm1ᵀ(attentionᵀ(dx')) + norm2ᵀ(mlpᵀ(dx'))
 *   sequential:  dh = dx' + norm2ᵀ(mlpᵀ(dx'));  dx = dh + norm1ᵀ(attentionᵀ(dh))
 * The lowest layer with a trained update computes no gradient for its input, and the layers
 * below it none at all.
 * With a {@link KvCache}, attention appends each layer's keys and values to it and reads the cached
 * ones (decoding); everything else is the same row-wise computation.
 * Workspace of layer i: "x" its input, "n1", "n2" the norms' outputs, "h", "a", "m" the branches;
 * layer count's "x" is the final norm's input.
 */
final class Decoder {
    record Layer(Norm inputNorm, Norm postAttentionNorm, Attention attention, Mlp mlp) {
        boolean trainable() {
            return attention.trainable() || mlp.trainable();
        }
    }

    private final Backend backend;
    private final Embeddings embeddings;
    private final List<Layer> layers;
    private final Norm finalNorm;
    private final boolean parallelResidual;
    private final int hidden;
    private final Layers ws;

    Decoder(Backend backend, Embeddings embeddings, List<Layer> layers, Norm finalNorm, boolean parallelResidual, int hidden, boolean training) {
        this.backend = backend;
        this.embeddings = embeddings;
        this.layers = List.copyOf(layers);
        this.finalNorm = finalNorm;
        this.parallelResidual = parallelResidual;
        this.hidden = hidden;
        this.ws = new Layers(backend, layers.size(), training);
    }

    /** out [tokens, hidden] for ids [tokens]. */
    Tensor forward(Packing p, int[] ids) {
        return forward(p, ids, null, null);
    }

    /** As {@link #forward(Packing, int[])}, sequence s continuing the one in cache slot slots[s] when cache is non-null. */
    Tensor forward(Packing p, int[] ids, KvCache cache, int[] slots) {
        if (cache != null && cache.layers() != layers.size()) throw new IllegalArgumentException("a KV cache of " + cache.layers() + " layers for " + layers.size());
        KvCache.Step step = cache == null ? null : cache.step(p, slots);
        int n = p.tokens();
        Tensor x = ws.of(0).get("x", n, hidden);
        embeddings.forward(p, ids, x);
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            Workspace w = ws.of(i);
            Tensor next = ws.of(i + 1).get("x", n, hidden);
            Tensor n1 = w.get("n1", n, hidden), n2 = w.get("n2", n, hidden), a = w.get("a", n, hidden), m = w.get("m", n, hidden);
            l.inputNorm.forward(x, n1);
            l.attention.forward(p, n1, w, step == null ? null : step.layer(i), a);
            if (parallelResidual) {
                l.postAttentionNorm.forward(x, n2);
                l.mlp.forward(n2, w, m);
                backend.add(x, a, next);
                backend.add(next, m, next);
            } else {
                Tensor h = w.get("h", n, hidden);
                backend.add(x, a, h);
                l.postAttentionNorm.forward(h, n2);
                l.mlp.forward(n2, w, m);
                backend.add(h, m, next);
            }
            x = next;
        }
        Tensor out = ws.of(layers.size()).get("out", n, hidden);
        finalNorm.forward(x, out);
        return out;
    }

    /** An empty cache for {@code slots} sequences of up to {@code capacity} tokens. */
    KvCache cache(int slots, int capacity) {
        return new KvCache(backend, layers.stream().mapToInt(l -> l.attention.kvWidth()).toArray(), slots, capacity);
    }

    /** Backward of the last forward for dOut [tokens, hidden] (see {@link Backbone#backward}). */
    void backward(Packing p, Tensor dOut) {
        ws.checkTraining();
        int lowest = 0;
        while (lowest < layers.size() && !layers.get(lowest).trainable()) lowest++;
        if (lowest == layers.size()) return;
        int n = p.tokens();
        Workspace grads = ws.grads;
        Tensor dx = grads.zeroed("dx", n, hidden);
        finalNorm.backward(ws.of(layers.size()).get("x", n, hidden), dOut, dx);
        for (int i = layers.size() - 1; i >= lowest; i--) {
            Layer l = layers.get(i);
            Workspace w = ws.of(i);
            boolean below = i > lowest;
            Tensor x = w.get("x", n, hidden), n1 = w.get("n1", n, hidden), n2 = w.get("n2", n, hidden);
            Tensor dn1 = below ? grads.zeroed("dn1", n, hidden) : null;
            if (parallelResidual) {
                Tensor dn2 = below ? grads.zeroed("dn2", n, hidden) : null;
                l.mlp.backward(n2, w, grads, dx, dn2);
                l.attention.backward(p, n1, w, grads, dx, dn1);
                if (below) l.postAttentionNorm.backward(x, dn2, dx);
            } else {
                boolean toAttention = below || l.attention.trainable();
                Tensor dn2 = toAttention ? grads.zeroed("dn2", n, hidden) : null;
                l.mlp.backward(n2, w, grads, dx, dn2);
                if (!toAttention) continue;
                l.postAttentionNorm.backward(w.get("h", n, hidden), dn2, dx);
                l.attention.backward(p, n1, w, grads, dx, dn1);
            }
            if (below) l.inputNorm.backward(x, dn1, dx);
        }
    }
}
