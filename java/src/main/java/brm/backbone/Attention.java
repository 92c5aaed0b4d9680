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
 * Scratch: workspace buffers "attention.qkv" or "attention.q/k/v", and "attention.context".
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

    /** y [tokens, hidden] = attention(x [tokens, hidden]) within each sequence of p. */
    public void forward(Packing p, Tensor x, Workspace ws, Tensor y) {
        int rows = x.rows();
        Heads qh, kh, vh;
        if (qkv != null) {
            Tensor t = ws.get("attention.qkv", rows, 3 * heads * dim);
            qkv.forward(x, t);
            qh = new Heads(t, 0, 3 * dim, heads, dim);
            kh = new Heads(t, dim, 3 * dim, heads, dim);
            vh = new Heads(t, 2 * dim, 3 * dim, heads, dim);
        } else {
            qh = project(q, x, ws.get("attention.q", rows, heads * dim), heads);
            kh = project(k, x, ws.get("attention.k", rows, kvHeads * dim), kvHeads);
            vh = project(v, x, ws.get("attention.v", rows, kvHeads * dim), kvHeads);
        }
        if (rotary != null) {
            rotary.apply(p, qh);
            rotary.apply(p, kh);
        }
        Tensor context = ws.get("attention.context", rows, heads * dim);
        backend.attention(p, qh, kh, vh, causal, (float) (1 / Math.sqrt(dim)), context);
        out.forward(context, y);
    }

    private Heads project(Linear projection, Tensor x, Tensor t, int count) {
        projection.forward(x, t);
        return Heads.packed(t, count, dim);
    }
}
