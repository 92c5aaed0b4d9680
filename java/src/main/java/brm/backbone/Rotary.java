package brm.backbone;

import brm.backend.Backend;
import brm.backend.Heads;
import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * Rotary position embedding (RoPE), rotate-half convention of GPT-NeoX and Llama in transformers, on
 * the first {@code dims} of each head (all of it for Llama, rotary_pct of it for GPT-NeoX):
 *   inv_freq[i] = θ^(-2i/dims), angle[pos, i] = pos · inv_freq[i], i &lt; dims/2
 *   (x[i], x[i + dims/2]) ← (x[i]·cos - x[i+dims/2]·sin, x[i+dims/2]·cos + x[i]·sin)
 * The cos/sin tables [maxPositions, dims/2] are computed once in double and stored as FP32.
 */
public record Rotary(Backend backend, Tensor cos, Tensor sin, int dims) {
    static Rotary create(Backend backend, int dims, double theta, int maxPositions) {
        int half = dims / 2;
        float[] cos = new float[maxPositions * half], sin = new float[maxPositions * half];
        for (int i = 0; i < half; i++) {
            double invFreq = Math.pow(theta, -2.0 * i / dims);
            for (int pos = 0; pos < maxPositions; pos++) {
                cos[pos * half + i] = (float) Math.cos(pos * invFreq);
                sin[pos * half + i] = (float) Math.sin(pos * invFreq);
            }
        }
        return new Rotary(backend, backend.upload(cos, maxPositions, half), backend.upload(sin, maxPositions, half), dims);
    }

    /** Rotates the heads of every row in place, each row at its position in its sequence. */
    public void apply(Packing p, Heads heads) {
        backend.rotary(p, heads, dims, cos, sin, false);
    }

    /** The transpose of {@link #apply}: rotates back by the opposite angle (backward of a rotation). */
    public void invert(Packing p, Heads heads) {
        backend.rotary(p, heads, dims, cos, sin, true);
    }
}
