package brm.backend;

/**
 * The seam between model code and the hardware. Model code (brm.backbone, brm.head, brm.train) is
 * written once against these ops; a backend owns the memory of every {@link Tensor} and
 * {@link Weight} it creates and runs the ops on them. The CPU backend computes in FP32; the
 * reference backend ({@code ReferenceBackend}) runs the same ops in FP64 for gradient checks.
 *
 * Activations use the packed layout of {@link Packing}: x [tokens, cols], the tokens of all
 * sequences of a batch as rows. Unless noted, an op works on all rows of its tensors, in place
 * where it says so, and its tensors must not overlap. A backend runs one op at a time (callers do
 * not share a model between threads); ops may use many threads inside, but a result never depends
 * on how the work was split beyond the thread count fixed at construction (same inputs, same bits).
 *
 * Backward ops take the forward op's inputs and the gradient of its output, dy, and give the
 * gradients of its inputs. "dx +=" means the op accumulates (the caller zeroes first), "dx ="
 * that it overwrites.
 */
public interface Backend extends AutoCloseable {
    /** An nn.Linear weight W [out, in] (+ bias [out]), prepared for repeated products. */
    interface Weight {
        int out();

        int in();
    }

    /**
     * A LoRA update kept unmerged, read from its tensors at each use (so training can update them):
     * a = A [r, in], b = B [out, r], y += scale · (x·Aᵀ)·Bᵀ.
     */
    record Lora(Tensor a, Tensor b, float scale) {
        public Lora {
            if (a.rows() != b.cols()) throw new IllegalArgumentException("LoRA A is [" + a.rows() + ", " + a.cols() + "], B is [" + b.rows() + ", " + b.cols() + "]");
        }

        public int r() {
            return a.rows();
        }
    }

    /** A zeroed tensor [rows, cols]. */
    Tensor allocate(int rows, int cols);

    /** A tensor [rows, cols] holding a copy of {@code values} (row-major). */
    Tensor upload(float[] values, int rows, int cols);

    /** t = values (row-major, rows·cols of them): updates a tensor in place, e.g. after an optimizer step. */
    void write(float[] values, Tensor t);

    /** A copy of the tensor's values [rows·cols], row-major. */
    float[] download(Tensor t);

    /** into[0, rows·cols) = the tensor's values, row-major: {@link #download} without allocating (a decode step's logits). */
    void download(Tensor t, float[] into);

    /** t = 0. */
    void zero(Tensor t);

    /**
     * W [out, in] row-major (nn.Linear layout), bias [out] or null; both are copied. With
     * {@code backward}, also prepared for {@link #linearBackward}'s dx = dy·W.
     */
    Weight weight(float[] w, float[] bias, int out, int in, boolean backward);

    /** y [rows, out] = x [rows, in] · Wᵀ + b (+ scale · (x·Aᵀ)·Bᵀ when lora is non-null). */
    void linear(Tensor x, Weight w, Lora lora, Tensor y);

    /**
     * Backward of {@link #linear} for dy [rows, out], with u = dy·B [rows, r]:
     *   dx [rows, in] += dy·W + scale · u·A        (skipped when dx is null; W must have been prepared with backward)
     *   dA [r, in]    += scale · uᵀ·x              (skipped when null)
     *   dB [out, r]   += scale · dyᵀ·(x·Aᵀ)        (skipped when null)
     * The bias and W themselves are frozen: no gradient.
     */
    void linearBackward(Tensor x, Weight w, Lora lora, Tensor dy, Tensor dx, Tensor dA, Tensor dB);

    /** c = alpha · op(a)·op(b) + beta · c, op(t) = tᵀ when its flag is set; beta 0 ignores c's contents. */
    void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, float beta, Tensor c);

    /**
     * Inverted dropout: out = x · keep / (1 - p), keep from {@link DropoutMask}(seed, row·cols + col);
     * out may be x. Its backward is the same op on the gradient with the same seed.
     */
    void dropout(Tensor x, float p, long seed, Tensor out);

    /** out [tokens, cols] = table [vocab, cols] rows ids[tokens] (ids already checked against vocab). */
    void embed(int[] ids, Tensor table, Tensor out);

    /** x [tokens, cols] += table [maxPositions, cols] at each row's position in its sequence. */
    void addPositions(Packing p, Tensor table, Tensor x);

    /** out = a + b, all [rows, cols]; out may be a or b. */
    void add(Tensor a, Tensor b, Tensor out);

    /** out = (x - mean(x)) / sqrt(var(x) + eps) · weight + bias, per row; weight, bias [1, cols]; out may be x. */
    void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out);

    /**
     * Backward of {@link #layerNorm} at input x: with x̂ the normalised row, rstd = 1/sqrt(var + eps),
     * g = dy·weight: dx += rstd · (g - mean(g) - x̂ · mean(g·x̂)).
     */
    void layerNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx);

    /** out = x / sqrt(mean(x²) + eps) · weight, per row; weight [1, cols]; out may be x. */
    void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out);

    /** Backward of {@link #rmsNorm}: with rstd = 1/sqrt(mean(x²) + eps), g = dy·weight: dx += rstd · (g - x · rstd² · mean(g·x)). */
    void rmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx);

    /** out = x · Φ(x) = 0.5·x·(1 + erf(x/√2)): exact GELU (HF "gelu"); out may be x. */
    void gelu(Tensor x, Tensor out);

    /** Backward of {@link #gelu}: dx = dy · (Φ(x) + x·φ(x)), φ the standard normal density; dx may be dy. */
    void geluBackward(Tensor x, Tensor dy, Tensor dx);

    /** out = silu(gate) · up = gate / (1 + e^-gate) · up (SwiGLU); all [rows, cols]; out may be gate or up. */
    void siluMul(Tensor gate, Tensor up, Tensor out);

    /**
     * Backward of {@link #siluMul}, with s = sigmoid(gate): dUp = dy · silu(gate),
     * dGate = dy · up · s · (1 + gate · (1 - s)). dGate or dUp may be dy; neither may be gate, up or the other.
     */
    void siluMulBackward(Tensor gate, Tensor up, Tensor dy, Tensor dGate, Tensor dUp);

    /**
     * Rotary embedding in place on the first {@code dims} of every head, rotate-half convention: with
     * n = dims/2, c = cos[pos, i], s = sin[pos, i] for i &lt; n:
     * (x[i], x[i+n]) ← (x[i]·c - x[i+n]·s, x[i+n]·c + x[i]·s). cos, sin [maxPositions, n].
     * {@code inverse} rotates by the opposite angle (s → -s): the backward of a rotation is its transpose.
     */
    void rotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin, boolean inverse);

    /**
     * Scaled dot-product attention per sequence and query head h (key/value head h / (Hq/Hkv), GQA):
     * out[t, h·D ..] = Σ_j softmax_j(scale · q_t·k_j) v_j over j ≤ t when causal, all j of the sequence
     * otherwise. q has Hq heads, k and v Hkv heads, all of dimension D; out [tokens, Hq·D].
     */
    void attention(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor out);

    /**
     * Backward of {@link #attention} for dOut [tokens, Hq·D], recomputing P = softmax(S) per sequence
     * and head: dP = dO·Vᵀ, dS = P·(dP - rowsum(P·dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO,
     * a key/value head's gradients summed over the query heads of its group. dq, dk, dv are overwritten
     * (all their heads' columns, every row); they may be views of one tensor (GPT-NeoX's fused layout)
     * but must not overlap q, k, v or dOut.
     */
    void attentionBackward(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor dOut,
                           Heads dq, Heads dk, Heads dv);

    /**
     * Appends keys and values to a KV cache of C positions per slot, Hkv heads of dimension D: row r of sequence s
     * of p is the token at position pos_r (p.positions()) of the sequence in slot slots[s]; k and v have Hkv heads.
     *   keys   [slots·Hkv·D, C]   keys[(slot·Hkv + g)·D + e, pos] = k[r, head g][e]    (transposed: one row per dimension)
     *   values [slots·C, Hkv·D]   values[slot·C + pos, g·D + e] = v[r, head g][e]
     * Keys are stored transposed so that a query's scores against all its positions are contiguous vector products.
     */
    void cacheAppend(Packing p, Heads k, Heads v, int[] slots, Tensor keys, Tensor values);

    /**
     * Attention over a KV cache laid out as {@link #cacheAppend} writes it: query row r of sequence s, at position
     * pos_r, attends positions j ≤ pos_r of slot slots[s]:
     *   out[r, h·D ..] = Σ_{j ≤ pos_r} softmax_j(scale · q[r, head h]·K_j) V_j,  K_j, V_j of key/value head h / (Hq/Hkv)
     * q [tokens, ·] has Hq heads of dimension D; out [tokens, Hq·D].
     */
    void cachedAttention(Packing p, Heads q, Tensor keys, Tensor values, int[] slots, float scale, Tensor out);

    /** out [seqs, cols] = one vector per sequence of x [tokens, cols] (see {@link Pooling}). */
    void pool(Packing p, Tensor x, Pooling how, Tensor out);

    /**
     * Per-sequence outer-product sums: out [seqs·m, n], block s = alpha · a_sᵀ·b_s with a_s [T_s, m] and
     * b_s [T_s, n] the rows of sequence s of a [tokens, m] and b [tokens, n] (overwritten): each response's
     * Jacobian Σ_t g_t·a_tᵀ of a linear layer, for a whole batch at once.
     */
    void segmentOuter(Packing p, Tensor a, Tensor b, float alpha, Tensor out);

    /** Backward of {@link #pool}: dx [tokens, cols] = dPooled [seqs, cols] spread back to the rows it read (0 elsewhere). */
    void poolBackward(Packing p, Pooling how, Tensor dPooled, Tensor dx);

    @Override
    void close();
}
