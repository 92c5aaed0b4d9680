package brm.backbone;

import brm.backend.Backend;
import brm.backend.Heads;
import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * Multi-head self-attention over packed sequences, Hq query heads and Hkv key/value heads of
 * dimension D (Hkv &lt; Hq is grouped-query attention: query head h reads kv head h / (Hq/Hkv)):
 *   q, k, v = projections of x; q, k ← rotary(q, k) (decoders)
 *   o_t = Σ_j softmax_j(q_t·k_j / √D) v_j, j over the sequence (j ≤ t when causal)
 *   y = out(o)
 * The projections are either GPT-NeoX's fused query_key_value, whose output [rows, H·3D] holds per
 * head its q, k and v side by side, or three (Llama q/k/v_proj, BERT query/key/value).
 * Backward: dO = dy·∂out; (dq, dk, dv) = attention'(dO) (softmax recomputed by the backend);
 * dq, dk ← rotaryᵀ (the inverse rotation); dx = Σ dproj·∂proj.
 * With a {@link KvCache} (decoding), k and v are appended to the cache after rotary and each query
 * attends its sequence's cached keys instead of the batch's rows.
 * Workspace buffers (kept for backward): "attention.qkv" or "attention.q/k/v" (after rotary),
 * "attention.context".
 */
public final class Attention {
    private final Backend backend;
    private final Linear qkv, q, k, v, out;
    private final Rotary rotary;
    private final int heads, kvHeads, dim;
    private final boolean causal;

    private Attention(Backend backend, Linear qkv, Linear q, Linear k, Linear v, Linear out, Rotary rotary,
                      int heads, int kvHeads, int dim, boolean causal) {
        this.backend = backend;
        this.qkv = qkv;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.rotary = rotary;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.dim = dim;
        this.causal = causal;
    }

    /** GPT-NeoX: one query_key_value projection, causal, rotary. */
    static Attention fused(Backend backend, Linear qkv, Linear out, Rotary rotary, int heads, int dim) {
        return new Attention(backend, qkv, null, null, null, out, rotary, heads, heads, dim, true);
    }

    /** Llama (causal, rotary, GQA) and BERT (bidirectional, rotary null). */
    static Attention separate(Backend backend, Linear q, Linear k, Linear v, Linear out, Rotary rotary,
                              int heads, int kvHeads, int dim, boolean causal) {
        return new Attention(backend, null, q, k, v, out, rotary, heads, kvHeads, dim, causal);
    }

    private float scale() {
        return (float) (1 / Math.sqrt(dim));
    }

    /** The q, k, v heads inside the workspace buffers {@code ws} names with {@code prefix} ("attention." or "attention.d"). */
    private Heads[] heads(Workspace ws, String prefix, int rows) {
        if (qkv != null) {
            Tensor t = ws.get(prefix + "qkv", rows, 3 * heads * dim);
            return new Heads[] {new Heads(t, 0, 3 * dim, heads, dim), new Heads(t, dim, 3 * dim, heads, dim), new Heads(t, 2 * dim, 3 * dim, heads, dim)};
        }
        return new Heads[] {Heads.packed(ws.get(prefix + "q", rows, heads * dim), heads, dim),
                Heads.packed(ws.get(prefix + "k", rows, kvHeads * dim), kvHeads, dim),
                Heads.packed(ws.get(prefix + "v", rows, kvHeads * dim), kvHeads, dim)};
    }

    /** y [tokens, hidden] = attention(x [tokens, hidden]) within each sequence of p. */
    public void forward(Packing p, Tensor x, Workspace ws, Tensor y) {
        forward(p, x, ws, null, y);
    }

    /** As {@link #forward(Packing, Tensor, Workspace, Tensor)}, over the cache's keys and values when cache is non-null. */
    void forward(Packing p, Tensor x, Workspace ws, KvCache.Layer cache, Tensor y) {
        int rows = x.rows();
        Heads[] h = heads(ws, "attention.", rows);
        if (qkv != null) {
            qkv.forward(x, h[0].tensor());
        } else {
            q.forward(x, h[0].tensor());
            k.forward(x, h[1].tensor());
            v.forward(x, h[2].tensor());
        }
        if (rotary != null) {
            rotary.apply(p, h[0]);
            rotary.apply(p, h[1]);
        }
        Tensor context = ws.get("attention.context", rows, heads * dim);
        if (cache == null) backend.attention(p, h[0], h[1], h[2], causal, scale(), context);
        else cache.attend(h[0], h[1], h[2], scale(), context);
        out.forward(context, y);
    }

    /** Hkv·D: the width of this layer's cached keys and values. */
    int kvWidth() {
        return kvHeads * dim;
    }

    public boolean trainable() {
        return out.trainable() || inputsTrainable();
    }

    private boolean inputsTrainable() {
        return qkv != null ? qkv.trainable() : q.trainable() || k.trainable() || v.trainable();
    }

    /**
     * Backward of the last {@link #forward} on x (its buffers still in ws) for dy [tokens, hidden]:
     * LoRA gradients +=, and dx += d/dx when dx is non-null. dx may be dy. grads: scratch.
     */
    public void backward(Packing p, Tensor x, Workspace ws, Workspace grads, Tensor dy, Tensor dx) {
        int rows = x.rows();
        boolean throughInputs = dx != null || inputsTrainable();
        Tensor dContext = throughInputs ? grads.zeroed("attention.dcontext", rows, heads * dim) : null;
        out.backward(ws.get("attention.context", rows, heads * dim), dy, dContext);
        if (!throughInputs) return;
        Heads[] h = heads(ws, "attention.", rows), d = heads(grads, "attention.d", rows);
        backend.attentionBackward(p, h[0], h[1], h[2], causal, scale(), dContext, d[0], d[1], d[2]);
        if (rotary != null) {
            rotary.invert(p, d[0]);
            rotary.invert(p, d[1]);
        }
        if (qkv != null) {
            qkv.backward(x, d[0].tensor(), dx);
        } else {
            q.backward(x, d[0].tensor(), dx);
            k.backward(x, d[1].tensor(), dx);
            v.backward(x, d[2].tensor(), dx);
        }
    }
}
