package brm.backend;

import brm.lora.LoraLayer;

/**
 * The seam between model code and the hardware. Model code (brm.backbone, brm.head) is written once
 * against these ops; a backend owns the memory of every {@link Tensor}, {@link Weight} and
 * {@link Lora} it creates and runs the ops on them. All math is FP32.
 *
 * Activations use the packed layout of {@link Packing}: x [tokens, cols], the tokens of all
 * sequences of a batch as rows. Unless noted, an op works on all rows of its tensors, in place
 * where it says so, and its tensors must not overlap. A backend runs one op at a time (callers do
 * not share a model between threads); ops may use many threads inside.
 */
public interface Backend extends AutoCloseable {
    /** An nn.Linear weight W [out, in] (+ bias [out]), prepared for repeated products. */
    interface Weight {
        int out();

        int in();
    }

    /** A LoRA update kept unmerged: A [r, in], B [out, r], scale. */
    interface Lora {
        int r();
    }

    /** A zeroed tensor [rows, cols]. */
    Tensor allocate(int rows, int cols);

    /** A tensor [rows, cols] holding a copy of {@code values} (row-major). */
    Tensor upload(float[] values, int rows, int cols);

    /** A copy of the tensor's values [rows·cols], row-major. */
    float[] download(Tensor t);

    /** W [out, in] row-major (nn.Linear layout), bias [out] or null; both are copied. */
    Weight weight(float[] w, float[] bias, int out, int in);

    /** The update of one LoRA layer, copied. */
    Lora lora(LoraLayer layer);

    /** y [rows, out] = x [rows, in] · Wᵀ + b (+ scale · (x·Aᵀ)·Bᵀ when lora is non-null). */
    void linear(Tensor x, Weight w, Lora lora, Tensor y);

    /** out [tokens, cols] = table [vocab, cols] rows ids[tokens] (ids already checked against vocab). */
    void embed(int[] ids, Tensor table, Tensor out);

    /** x [tokens, cols] += table [maxPositions, cols] at each row's position in its sequence. */
    void addPositions(Packing p, Tensor table, Tensor x);

    /** x [rows, cols] += delta [rows, cols]. */
    void add(Tensor x, Tensor delta);

    /** out = (x - mean(x)) / sqrt(var(x) + eps) · weight + bias, per row; weight, bias [1, cols]; out may be x. */
    void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out);

    /** Fused residual add: x += delta, then out = layerNorm(x); out may be x. */
    void addLayerNorm(Tensor x, Tensor delta, Tensor weight, Tensor bias, float eps, Tensor out);

    /** out = x / sqrt(mean(x²) + eps) · weight, per row; weight [1, cols]; out may be x. */
    void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out);

    /** Fused residual add: x += delta, then out = rmsNorm(x); out may be x. */
    void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out);

    /** x = x · Φ(x) = 0.5·x·(1 + erf(x/√2)) in place: exact GELU (HF "gelu"). */
    void gelu(Tensor x);

    /** out = silu(gate) · up = gate / (1 + e^-gate) · up (SwiGLU); all [rows, cols]. */
    void siluMul(Tensor gate, Tensor up, Tensor out);

    /**
     * Rotary embedding in place on the first {@code dims} of every head, rotate-half convention: with
     * n = dims/2, c = cos[pos, i], s = sin[pos, i] for i &lt; n:
     * (x[i], x[i+n]) ← (x[i]·c - x[i+n]·s, x[i+n]·c + x[i]·s). cos, sin [maxPositions, n].
     */
    void rotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin);

    /**
     * Scaled dot-product attention per sequence and query head h (key/value head h / (Hq/Hkv), GQA):
     * out[t, h·D ..] = Σ_j softmax_j(scale · q_t·k_j) v_j over j ≤ t when causal, all j of the sequence
     * otherwise. q has Hq heads, k and v Hkv heads, all of dimension D; out [tokens, Hq·D].
     */
    void attention(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor out);

    /** out [seqs, cols] = one vector per sequence of x [tokens, cols] (see {@link Pooling}). */
    void pool(Packing p, Tensor x, Pooling how, Tensor out);

    @Override
    void close();
}
