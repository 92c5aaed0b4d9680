package brm.backend;

import brm.cpu.Gemm;
import brm.cpu.Parallel;

import java.util.Arrays;

/**
 * The CPU backend: tensors are float[] row-major, the matrix products go to {@link Gemm}, the
 * element-wise ops to the Vector API kernels of {@link CpuKernels}, and all threads come from one
 * {@link Parallel}: element-wise ops split the rows, attention splits (sequence, head) pairs.
 *
 * Linear: y = x·Wᵀ + b (Gemm.linear), and for LoRA t = x·Aᵀ [rows, r] (Gemm.linear) then
 * y += scale·t·Bᵀ (Gemm.sgemm with beta 1), the rows split across the threads, each chunk a
 * single-threaded product.
 *
 * Attention, per sequence s (rows [start, start+T)) and query head h (reading the key/value head of
 * h's group), a tile of queries at a time: S = scale·Q·Kᵀ and O = softmax(S)·V as single-threaded
 * GEMMs straight from the strided head views (no copies); when causal, a tile computes only the keys
 * up to its last query and each row's softmax runs over its own keys t' ≤ t, the rest set to 0.
 * The score tile is one float[] per worker thread, grown on demand.
 *
 * Cached attention (decoding) has one query per row: per (row, query head), the scores
 * s = scale·q·Kᵀ as a weighted sum of the D rows of Kᵀ (keys are cached transposed, so the positions
 * are the vector lanes and no horizontal sums are needed), the softmax, and o = Σ_j p_j·v_j as a
 * weighted sum of the rows of V; a row's result does not depend on the other rows of the batch.
 *
 * Backward ops mirror their forward. Linear: dx += dy·W is Gemm.linear (beta 1) on Wᵀ, packed by
 * weight() when asked for backward; LoRA's u = dy·B, t = x·Aᵀ and dx += scale·u·A run per row
 * chunk; the parameter gradients dA += scale·uᵀ·x and dBᵀ = scale·tᵀ·dy (added into dB transposed)
 * are single products over all rows on the Parallel sgemm, which splits C, so no thread sums into
 * another's elements. Attention recomputes S and P per query tile as the forward does, then
 *   dP = dO·Vᵀ,  dV += Pᵀ·dO,  dS = P⊙(dP - rowsum(P⊙dP)),  dQ = scale·dS·K,  dK += scale·dSᵀ·Q
 * with one task per (sequence, key/value head) that zeroes and owns that head's dK, dV rows and
 * loops over the query heads of its group (each query head's dQ rows are written by one product).
 */
public final class CpuBackend implements Backend {
    private final Parallel par;
    /** Queries per attention tile: large enough for efficient GEMMs, small enough to waste little of the causal triangle. */
    private static final int QUERY_TILE = 64;
    /** Per worker thread: attention's score tile (and backward's dP tile after it), grown on demand. */
    private final ThreadLocal<float[]> attentionScratch = ThreadLocal.withInitial(() -> new float[0]);
    private float[] loraScratch = new float[0];

    public CpuBackend(int threads) {
        this.par = new Parallel(threads);
    }

    static final class CpuTensor implements Tensor {
        final float[] data;
        final int rows, cols;

        CpuTensor(float[] data, int rows, int cols) {
            this.data = data;
            this.rows = rows;
            this.cols = cols;
        }

        @Override
        public int rows() { return rows; }

        @Override
        public int cols() { return cols; }

        @Override
        public Tensor firstRows(int rows) {
            return new CpuTensor(data, Tensor.firstRowsOf(this, rows), cols);
        }
    }

    /** transposed: Wᵀ packed as a weight [in, out], for backward's dy·W; null when not prepared for backward. */
    private record CpuWeight(Gemm.PackedWeight packed, Gemm.PackedWeight transposed, float[] bias) implements Weight {
        @Override
        public int out() { return packed.out(); }

        @Override
        public int in() { return packed.in(); }
    }

    private static CpuTensor cpu(Tensor t) {
        return (CpuTensor) t;
    }

    private static void sameShape(Tensor a, Tensor b) {
        if (a.rows() != b.rows() || a.cols() != b.cols())
            throw new IllegalArgumentException("shape [" + a.rows() + ", " + a.cols() + "] vs [" + b.rows() + ", " + b.cols() + "]");
    }

    @FunctionalInterface
    private interface RowRange {
        void run(int from, int to);
    }

    /** Runs body over [0, n) in contiguous chunks, a few per thread. */
    private void chunks(int n, RowRange body) {
        int chunks = Math.min(n, par.threads() == 1 ? 1 : 4 * par.threads());
        par.forEach(chunks, c -> body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks)));
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return new CpuTensor(new float[Math.multiplyExact(rows, cols)], rows, cols);
    }

    @Override
    public Tensor upload(float[] values, int rows, int cols) {
        if (values.length != (long) rows * cols) throw new IllegalArgumentException(values.length + " values for [" + rows + ", " + cols + "]");
        return new CpuTensor(values.clone(), rows, cols);
    }

    @Override
    public void write(float[] values, Tensor t) {
        if (values.length != t.rows() * t.cols()) throw new IllegalArgumentException(values.length + " values for [" + t.rows() + ", " + t.cols() + "]");
        System.arraycopy(values, 0, cpu(t).data, 0, values.length);
    }

    @Override
    public float[] download(Tensor t) {
        return Arrays.copyOf(cpu(t).data, t.rows() * t.cols());
    }

    @Override
    public void download(Tensor t, float[] into) {
        System.arraycopy(cpu(t).data, 0, into, 0, t.rows() * t.cols());
    }

    @Override
    public void zero(Tensor t) {
        Arrays.fill(cpu(t).data, 0, t.rows() * t.cols(), 0f);
    }

    @Override
    public Weight weight(float[] w, float[] bias, int out, int in, boolean backward) {
        if (bias != null && bias.length != out) throw new IllegalArgumentException("bias has " + bias.length + " values, not " + out);
        return new CpuWeight(Gemm.pack(w, out, in), backward ? Gemm.pack(transpose(w, out, in), in, out) : null,
                bias == null ? null : bias.clone());
    }

    private static float[] transpose(float[] w, int rows, int cols) {
        float[] t = new float[w.length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = w[i * cols + j];
        return t;
    }

    private static void checkLinear(Tensor x, Weight w, Lora lora, Tensor y) {
        int rows = x.rows(), in = w.in(), out = w.out();
        if (x.cols() != in || y.cols() != out || y.rows() != rows || (lora != null && (lora.b().rows() != out || lora.a().cols() != in)))
            throw new IllegalArgumentException("linear [" + rows + ", " + x.cols() + "] · [" + out + ", " + in + "]ᵀ -> [" + y.rows() + ", " + y.cols() + "]");
    }

    /** Scratch for LoRA's bottlenecks [rows, r] (x·Aᵀ, and dy·B in {@link #linearBackward}) and backward's dBᵀ. */
    private float[] loraScratch(int size) {
        if (loraScratch.length < size) loraScratch = new float[size];
        return loraScratch;
    }

    @Override
    public void linear(Tensor x, Weight w, Lora lora, Tensor y) {
        checkLinear(x, w, lora, y);
        CpuWeight cw = (CpuWeight) w;
        int rows = x.rows(), in = w.in(), out = w.out();
        float[] xd = cpu(x).data, yd = cpu(y).data;
        if (lora == null) {
            chunks(rows, (from, to) -> Gemm.linear(xd, from * in, to - from, cw.packed, cw.bias, yd, from * out));
            return;
        }
        int r = lora.r();
        float[] a = cpu(lora.a()).data, b = cpu(lora.b()).data, t = loraScratch(rows * r);
        chunks(rows, (from, to) -> {
            Gemm.linear(xd, from * in, to - from, cw.packed, cw.bias, yd, from * out);
            Gemm.sgemm(false, true, to - from, r, in, 1f, xd, from * in, in, a, 0, in, 0f, t, from * r, r);
            Gemm.sgemm(false, true, to - from, out, r, lora.scale(), t, from * r, r, b, 0, r, 1f, yd, from * out, out);
        });
    }

    @Override
    public void linearBackward(Tensor x, Weight w, Lora lora, Tensor dy, Tensor dx, Tensor dA, Tensor dB) {
        checkLinear(x, w, lora, dy);
        CpuWeight cw = (CpuWeight) w;
        if (dx != null) {
            sameShape(x, dx);
            if (cw.transposed == null)
                throw new IllegalStateException("linearBackward: dx needs W [" + w.out() + ", " + w.in() + "] prepared with backward = true");
        }
        if (lora == null && (dA != null || dB != null)) throw new IllegalArgumentException("linearBackward: dA, dB without a LoRA");
        if (dA != null) sameShape(lora.a(), dA);
        if (dB != null) sameShape(lora.b(), dB);
        int rows = x.rows(), in = w.in(), out = w.out();
        float[] xd = cpu(x).data, dyd = cpu(dy).data, dxd = dx == null ? null : cpu(dx).data;
        if (lora == null) {
            if (dx != null) chunks(rows, (from, to) -> Gemm.linear(dyd, from * out, to - from, cw.transposed, null, 1f, dxd, from * in));
            return;
        }
        // scratch: u = dy·B [rows, r] at 0, t = x·Aᵀ [rows, r] at rows·r, dBᵀ [r, out] at 2·rows·r
        int r = lora.r();
        float scale = lora.scale();
        float[] a = cpu(lora.a()).data, b = cpu(lora.b()).data, ut = loraScratch(2 * rows * r + r * out);
        boolean needU = dx != null || dA != null;
        chunks(rows, (from, to) -> {
            int n = to - from;
            if (needU) Gemm.sgemm(false, false, n, r, out, 1f, dyd, from * out, out, b, 0, r, 0f, ut, from * r, r);
            if (dB != null) Gemm.sgemm(false, true, n, r, in, 1f, xd, from * in, in, a, 0, in, 0f, ut, (rows + from) * r, r);
            if (dx != null) {
                Gemm.linear(dyd, from * out, n, cw.transposed, null, 1f, dxd, from * in);
                Gemm.sgemm(false, false, n, in, r, scale, ut, from * r, r, a, 0, in, 1f, dxd, from * in, in);
            }
        });
        if (dA != null) Gemm.sgemm(par, true, false, r, in, rows, scale, ut, 0, r, xd, 0, in, 1f, cpu(dA).data, 0, in);
        if (dB != null) {
            // as dBᵀ = scale·tᵀ·dy: C [r, out] is wide where dB's [out, r] is narrow, and A = tᵀ is small to pack
            int bt = 2 * rows * r;
            Gemm.sgemm(par, true, false, r, out, rows, scale, ut, rows * r, r, dyd, 0, out, 0f, ut, bt, out);
            float[] dBd = cpu(dB).data;
            for (int o = 0; o < out; o++)
                for (int j = 0; j < r; j++) dBd[o * r + j] += ut[bt + j * out + o];
        }
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, float beta, Tensor c) {
        int m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
        int kb = transB ? b.cols() : b.rows(), n = transB ? b.rows() : b.cols();
        if (k != kb || c.rows() != m || c.cols() != n)
            throw new IllegalArgumentException("matmul [" + m + ", " + k + "] · [" + kb + ", " + n + "] -> [" + c.rows() + ", " + c.cols() + "]");
        Gemm.sgemm(par, transA, transB, m, n, k, alpha, cpu(a).data, 0, a.cols(), cpu(b).data, 0, b.cols(), beta, cpu(c).data, 0, c.cols());
    }

    @Override
    public void embed(int[] ids, Tensor table, Tensor out) {
        if (ids.length != out.rows() || table.cols() != out.cols()) throw new IllegalArgumentException("embed shapes");
        float[] td = cpu(table).data, od = cpu(out).data;
        int cols = out.cols();
        chunks(ids.length, (from, to) -> {
            for (int r = from; r < to; r++) System.arraycopy(td, ids[r] * cols, od, r * cols, cols);
        });
    }

    @Override
    public void addPositions(Packing p, Tensor table, Tensor x) {
        if (x.rows() != p.tokens() || table.cols() != x.cols()) throw new IllegalArgumentException("addPositions shapes");
        float[] td = cpu(table).data, xd = cpu(x).data;
        int cols = x.cols();
        chunks(x.rows(), (from, to) -> {
            for (int r = from; r < to; r++) CpuKernels.add(xd, r * cols, td, p.positions()[r] * cols, cols);
        });
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        sameShape(a, b);
        sameShape(a, out);
        float[] ad = cpu(a).data, bd = cpu(b).data, od = cpu(out).data;
        int cols = a.cols();
        chunks(a.rows(), (from, to) -> CpuKernels.add(ad, from * cols, bd, from * cols, od, from * cols, (to - from) * cols));
    }

    @Override
    public void dropout(Tensor x, float p, long seed, Tensor out) {
        sameShape(x, out);
        float[] xd = cpu(x).data, od = cpu(out).data;
        int cols = x.cols();
        float scale = 1 / (1 - p);
        chunks(x.rows(), (from, to) -> {
            for (int i = from * cols; i < to * cols; i++) od[i] = DropoutMask.keep(seed, i, p) ? xd[i] * scale : 0f;
        });
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        sameShape(x, out);
        float[] xd = cpu(x).data, w = cpu(weight).data, b = cpu(bias).data, od = cpu(out).data;
        int n = x.cols();
        chunks(x.rows(), (from, to) -> {
            for (int r = from; r < to; r++) CpuKernels.layerNorm(xd, r * n, w, b, eps, od, r * n, n);
        });
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        sameShape(x, out);
        float[] xd = cpu(x).data, w = cpu(weight).data, od = cpu(out).data;
        int n = x.cols();
        chunks(x.rows(), (from, to) -> {
            for (int r = from; r < to; r++) CpuKernels.rmsNorm(xd, r * n, w, eps, od, r * n, n);
        });
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        sameShape(x, out);
        float[] xd = cpu(x).data, od = cpu(out).data;
        int cols = x.cols();
        chunks(x.rows(), (from, to) -> CpuKernels.gelu(xd, from * cols, od, from * cols, (to - from) * cols));
    }

    @Override
    public void geluBackward(Tensor x, Tensor dy, Tensor dx) {
        sameShape(x, dy);
        sameShape(x, dx);
        float[] xd = cpu(x).data, dyd = cpu(dy).data, dxd = cpu(dx).data;
        int cols = x.cols();
        chunks(x.rows(), (from, to) -> CpuKernels.geluBackward(xd, from * cols, dyd, from * cols, dxd, from * cols, (to - from) * cols));
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        sameShape(x, dy);
        sameShape(x, dx);
        float[] xd = cpu(x).data, w = cpu(weight).data, dyd = cpu(dy).data, dxd = cpu(dx).data;
        int n = x.cols();
        chunks(x.rows(), (from, to) -> {
            for (int r = from; r < to; r++) CpuKernels.layerNormBackward(xd, r * n, w, eps, dyd, r * n, dxd, r * n, n);
        });
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        sameShape(x, dy);
        sameShape(x, dx);
        float[] xd = cpu(x).data, w = cpu(weight).data, dyd = cpu(dy).data, dxd = cpu(dx).data;
        int n = x.cols();
        chunks(x.rows(), (from, to) -> {
            for (int r = from; r < to; r++) CpuKernels.rmsNormBackward(xd, r * n, w, eps, dyd, r * n, dxd, r * n, n);
        });
    }

    @Override
    public void siluMulBackward(Tensor gate, Tensor up, Tensor dy, Tensor dGate, Tensor dUp) {
        sameShape(gate, up);
        sameShape(gate, dy);
        sameShape(gate, dGate);
        sameShape(gate, dUp);
        float[] g = cpu(gate).data, u = cpu(up).data, d = cpu(dy).data, dg = cpu(dGate).data, du = cpu(dUp).data;
        int cols = gate.cols();
        chunks(gate.rows(), (from, to) -> {
            int o = from * cols;
            CpuKernels.siluMulBackward(g, o, u, o, d, o, dg, o, du, o, (to - from) * cols);
        });
    }

    @Override
    public void poolBackward(Packing p, Pooling how, Tensor dPooled, Tensor dx) {
        if (dx.rows() != p.tokens() || dPooled.rows() != p.seqs() || dPooled.cols() != dx.cols()) throw new IllegalArgumentException("poolBackward shapes");
        float[] dp = cpu(dPooled).data, dxd = cpu(dx).data;
        int cols = dx.cols();
        chunks(p.seqs(), (from, to) -> {
            for (int s = from; s < to; s++) {
                int first = p.start(s), last = first + p.length(s) - 1;
                Arrays.fill(dxd, first * cols, (last + 1) * cols, 0f);
                switch (how) {
                    case LAST -> System.arraycopy(dp, s * cols, dxd, last * cols, cols);
                    case FIRST -> System.arraycopy(dp, s * cols, dxd, first * cols, cols);
                    case MEAN, SUM -> {
                        // every row gets dPooled (/ T): the first is computed, the others copy it
                        System.arraycopy(dp, s * cols, dxd, first * cols, cols);
                        if (how == Pooling.MEAN) CpuKernels.scale(dxd, first * cols, cols, 1f / p.length(s));
                        for (int r = first + 1; r <= last; r++) System.arraycopy(dxd, first * cols, dxd, r * cols, cols);
                    }
                }
            }
        });
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        sameShape(gate, up);
        sameShape(gate, out);
        float[] g = cpu(gate).data, u = cpu(up).data, o = cpu(out).data;
        int cols = gate.cols();
        chunks(gate.rows(), (from, to) -> CpuKernels.siluMul(g, from * cols, u, from * cols, o, from * cols, (to - from) * cols));
    }

    @Override
    public void rotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin, boolean inverse) {
        int half = dims / 2;
        if (dims % 2 != 0 || dims > heads.dim() || cos.cols() != half || sin.cols() != half || heads.tensor().rows() != p.tokens())
            throw new IllegalArgumentException("rotary over " + dims + " of " + heads.dim() + " dims, tables of " + cos.cols());
        float[] xd = cpu(heads.tensor()).data, c = cpu(cos).data, s = cpu(sin).data;
        int cols = heads.tensor().cols();
        float sign = inverse ? -1f : 1f;
        chunks(p.tokens(), (from, to) -> {
            for (int r = from; r < to; r++)
                for (int h = 0; h < heads.count(); h++)
                    CpuKernels.rotate(xd, r * cols + heads.offset() + h * heads.stride(), half, c, s, p.positions()[r] * half, sign);
        });
    }

    @Override
    public void attention(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor out) {
        checkAttention(p, q, k, v, out);
        int heads = q.count(), group = heads / k.count();
        par.forEach(p.seqs() * heads, task -> {
            int s = task / heads, h = task % heads;
            attendHead(p.start(s), p.length(s), h, h / group, q, k, v, causal, scale, cpu(out));
        });
    }

    private static void checkAttention(Packing p, Heads q, Heads k, Heads v, Tensor out) {
        int heads = q.count(), dim = q.dim();
        if (k.count() != v.count() || heads % k.count() != 0 || k.dim() != dim || v.dim() != dim
                || out.cols() != heads * dim || out.rows() != p.tokens())
            throw new IllegalArgumentException("attention shapes");
    }

    /** Where head h of row r starts in heads' tensor. */
    private static int at(Heads heads, int r, int h) {
        return r * heads.tensor().cols() + heads.offset() + h * heads.stride();
    }

    /** The calling thread's attention scratch, at least size floats. */
    private float[] attentionScratch(int size) {
        float[] scratch = attentionScratch.get();
        if (scratch.length < size) {
            scratch = new float[size];
            attentionScratch.set(scratch);
        }
        return scratch;
    }

    /**
     * One (sequence, query head) of {@link #attention}: rows [start, start+len), a tile of QUERY_TILE
     * queries at a time, so both products are GEMMs:
     *   S [m, keys] = scale · Q[t0:t0+m] · K[0:keys]ᵀ     keys = t0 + m when causal (the tile's horizon), else len
     *   P = softmax over each row's own keys (query t sees keys ≤ t when causal; the rest of the row is 0)
     *   O[t0:t0+m] = P · V[0:keys]
     * A sequence's result depends on its own rows only, so it does not change with the batch around it.
     */
    private void attendHead(int start, int len, int h, int kvHead, Heads q, Heads k, Heads v, boolean causal, float scale, CpuTensor out) {
        int tile = Math.min(QUERY_TILE, len);
        float[] scores = attentionScratch(tile * len);
        float[] vd = cpu(v.tensor()).data;
        int vBase = at(v, start, kvHead);
        for (int t0 = 0; t0 < len; t0 += tile) {
            int m = Math.min(tile, len - t0), keys = causal ? t0 + m : len;
            probabilities(start, len, t0, m, keys, h, kvHead, q, k, causal, scale, scores);
            Gemm.sgemm(false, false, m, q.dim(), keys, 1f, scores, 0, keys, vd, vBase, v.tensor().cols(), 0f, out.data, (start + t0) * out.cols + h * q.dim(), out.cols);
        }
    }

    /**
     * P [m, keys] (row stride keys, at 0 of p) for queries [t0, t0+m) of query head h in the sequence at
     * rows [start, start+len): S = scale·Q·Kᵀ, then each row's softmax over its own keys, the rest 0.
     */
    private static void probabilities(int start, int len, int t0, int m, int keys, int h, int kvHead, Heads q, Heads k,
                                      boolean causal, float scale, float[] p) {
        int qCols = q.tensor().cols(), kCols = k.tensor().cols();
        Gemm.sgemm(false, true, m, keys, q.dim(), scale, cpu(q.tensor()).data, at(q, start + t0, h), qCols,
                cpu(k.tensor()).data, at(k, start, kvHead), kCols, 0f, p, 0, keys);
        for (int i = 0; i < m; i++) {
            int row = i * keys, n = causal ? t0 + i + 1 : len;
            float inv = 1f / CpuKernels.softmaxExp(p, row, n, CpuKernels.max(p, row, n));
            CpuKernels.scale(p, row, n, inv);
            Arrays.fill(p, row + n, row + keys, 0f);
        }
    }

    /** Checks a KV cache against q or k's heads and the batch; returns C, the positions per slot. */
    private static int checkCache(Packing p, Heads heads, Tensor keys, Tensor values, int[] slots) {
        int dim = heads.dim(), width = values.cols(), capacity = keys.cols();
        if (width % dim != 0 || values.rows() % capacity != 0 || keys.rows() != values.rows() / capacity * width
                || heads.tensor().rows() != p.tokens() || slots.length != p.seqs())
            throw new IllegalArgumentException("KV cache keys [" + keys.rows() + ", " + keys.cols() + "], values [" + values.rows() + ", " + width
                    + "] for heads of " + dim + " and " + p.seqs() + " sequences");
        int count = values.rows() / capacity;
        for (int s = 0; s < p.seqs(); s++) {
            if (slots[s] < 0 || slots[s] >= count) throw new IllegalArgumentException("slot " + slots[s] + " of a " + count + "-slot cache");
            for (int r = p.start(s); r < p.start(s) + p.length(s); r++)
                if (p.positions()[r] < 0 || p.positions()[r] >= capacity)
                    throw new IllegalArgumentException("position " + p.positions()[r] + " outside a cache of " + capacity);
        }
        return capacity;
    }

    @Override
    public void cacheAppend(Packing p, Heads k, Heads v, int[] slots, Tensor keys, Tensor values) {
        int capacity = checkCache(p, k, keys, values, slots), dim = k.dim(), kvHeads = values.cols() / dim;
        if (k.count() != kvHeads || v.count() != kvHeads || v.dim() != dim || v.tensor().rows() != p.tokens())
            throw new IllegalArgumentException("cacheAppend: " + k.count() + "/" + v.count() + " heads for a cache of " + kvHeads);
        float[] kd = cpu(k.tensor()).data, vd = cpu(v.tensor()).data, keyd = cpu(keys).data, vald = cpu(values).data;
        for (int s = 0; s < p.seqs(); s++)
            for (int r = p.start(s); r < p.start(s) + p.length(s); r++) {
                int pos = p.positions()[r];
                for (int g = 0; g < kvHeads; g++) {
                    int from = at(k, r, g), to = (slots[s] * kvHeads + g) * dim * capacity + pos;
                    for (int e = 0; e < dim; e++) keyd[to + e * capacity] = kd[from + e];
                    System.arraycopy(vd, at(v, r, g), vald, (slots[s] * capacity + pos) * values.cols() + g * dim, dim);
                }
            }
    }

    @Override
    public void cachedAttention(Packing p, Heads q, Tensor keys, Tensor values, int[] slots, float scale, Tensor out) {
        int capacity = checkCache(p, q, keys, values, slots), heads = q.count(), dim = q.dim(), width = values.cols(), kvHeads = width / dim;
        if (heads % kvHeads != 0 || out.rows() != p.tokens() || out.cols() != heads * dim)
            throw new IllegalArgumentException("cachedAttention: " + heads + " query heads, " + kvHeads + " key/value heads, out [" + out.rows() + ", " + out.cols() + "]");
        int group = heads / kvHeads;
        float[] qd = cpu(q.tensor()).data, kd = cpu(keys).data, vd = cpu(values).data, od = cpu(out).data;
        int[] slotOf = new int[p.tokens()];
        for (int s = 0; s < p.seqs(); s++) Arrays.fill(slotOf, p.start(s), p.start(s) + p.length(s), slots[s]);
        chunks(p.tokens() * heads, (from, to) -> {
            float[] sc = attentionScratch(capacity + CpuKernels.S.length());
            for (int task = from; task < to; task++) {
                int r = task / heads, h = task % heads, g = h / group, n = p.positions()[r] + 1, slot = slotOf[r];
                int kAt = (slot * kvHeads + g) * dim * capacity, vAt = slot * capacity * width + g * dim;
                // s = scale·q·Kᵀ: the D rows of Kᵀ weighted by q, over the positions 0..n-1
                CpuKernels.weightedRows(scale, qd, at(q, r, h), dim, kd, kAt, capacity, sc, 0, n);
                float inv = 1f / CpuKernels.softmaxExp(sc, 0, n, CpuKernels.max(sc, 0, n));
                // o = Σ_j p_j·V_j: the n rows of V weighted by the unnormalised p, then scaled
                CpuKernels.weightedRows(inv, sc, 0, n, vd, vAt, width, od, r * out.cols() + h * dim, dim);
            }
        });
    }

    @Override
    public void attentionBackward(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor dOut,
                                  Heads dq, Heads dk, Heads dv) {
        checkAttention(p, q, k, v, dOut);
        if (!sameHeads(q, dq) || !sameHeads(k, dk) || !sameHeads(v, dv)) throw new IllegalArgumentException("attentionBackward: gradient heads differ from q, k, v");
        int kvHeads = k.count(), group = q.count() / kvHeads;
        par.forEach(p.seqs() * kvHeads, task -> {
            int s = task / kvHeads, g = task % kvHeads, start = p.start(s), len = p.length(s);
            float[] dkd = cpu(dk.tensor()).data, dvd = cpu(dv.tensor()).data;
            for (int r = start; r < start + len; r++) {
                Arrays.fill(dkd, at(dk, r, g), at(dk, r, g) + dk.dim(), 0f);
                Arrays.fill(dvd, at(dv, r, g), at(dv, r, g) + dv.dim(), 0f);
            }
            for (int h = g * group; h < (g + 1) * group; h++)
                attendHeadBackward(start, len, h, g, q, k, v, causal, scale, cpu(dOut), dq, dk, dv);
        });
    }

    private static boolean sameHeads(Heads a, Heads b) {
        return a.count() == b.count() && a.dim() == b.dim() && a.tensor().rows() == b.tensor().rows();
    }

    /**
     * One (sequence, query head) of {@link #attentionBackward}, per tile of queries [t0, t0+m) as in
     * {@link #attendHead}: P again, dP [m, keys] = dO·V[0:keys]ᵀ, dV[0:keys] += Pᵀ·dO, dS = P⊙(dP - rowsum(P⊙dP))
     * in place of dP, dQ[t0:t0+m] = scale·dS·K[0:keys], dK[0:keys] += scale·dSᵀ·Q[t0:t0+m].
     */
    private void attendHeadBackward(int start, int len, int h, int kvHead, Heads q, Heads k, Heads v, boolean causal, float scale,
                                    CpuTensor dOut, Heads dq, Heads dk, Heads dv) {
        int dim = q.dim(), tile = Math.min(QUERY_TILE, len);
        float[] scratch = attentionScratch(2 * tile * len);
        int dpAt = tile * len;
        float[] qd = cpu(q.tensor()).data, kd = cpu(k.tensor()).data, vd = cpu(v.tensor()).data;
        float[] dqd = cpu(dq.tensor()).data, dkd = cpu(dk.tensor()).data, dvd = cpu(dv.tensor()).data;
        int qCols = q.tensor().cols(), kCols = k.tensor().cols(), vCols = v.tensor().cols();
        int dqCols = dq.tensor().cols(), dkCols = dk.tensor().cols(), dvCols = dv.tensor().cols();
        int kBase = at(k, start, kvHead), vBase = at(v, start, kvHead), dkBase = at(dk, start, kvHead), dvBase = at(dv, start, kvHead);
        for (int t0 = 0; t0 < len; t0 += tile) {
            int m = Math.min(tile, len - t0), keys = causal ? t0 + m : len;
            int dO = (start + t0) * dOut.cols + h * dim, qAt = at(q, start + t0, h);
            probabilities(start, len, t0, m, keys, h, kvHead, q, k, causal, scale, scratch);
            Gemm.sgemm(false, true, m, keys, dim, 1f, dOut.data, dO, dOut.cols, vd, vBase, vCols, 0f, scratch, dpAt, keys);
            Gemm.sgemm(true, false, keys, dim, m, 1f, scratch, 0, keys, dOut.data, dO, dOut.cols, 1f, dvd, dvBase, dvCols);
            for (int i = 0; i < m; i++) CpuKernels.softmaxBackward(scratch, i * keys, scratch, dpAt + i * keys, keys);
            Gemm.sgemm(false, false, m, dim, keys, scale, scratch, dpAt, keys, kd, kBase, kCols, 0f, dqd, at(dq, start + t0, h), dqCols);
            Gemm.sgemm(true, false, keys, dim, m, scale, scratch, dpAt, keys, qd, qAt, qCols, 1f, dkd, dkBase, dkCols);
        }
    }

    @Override
    public void segmentOuter(Packing p, Tensor a, Tensor b, float alpha, Tensor out) {
        int m = a.cols(), n = b.cols();
        if (a.rows() != p.tokens() || b.rows() != p.tokens() || out.rows() != p.seqs() * m || out.cols() != n)
            throw new IllegalArgumentException("segmentOuter shapes");
        float[] ad = cpu(a).data, bd = cpu(b).data, od = cpu(out).data;
        par.forEach(p.seqs(), s -> Gemm.sgemm(true, false, m, n, p.length(s), alpha, ad, p.start(s) * m, m, bd, p.start(s) * n, n,
                0f, od, s * m * n, n));
    }

    @Override
    public void pool(Packing p, Tensor x, Pooling how, Tensor out) {
        if (x.rows() != p.tokens() || out.rows() != p.seqs() || out.cols() != x.cols()) throw new IllegalArgumentException("pool shapes");
        float[] xd = cpu(x).data, od = cpu(out).data;
        int cols = x.cols();
        chunks(p.seqs(), (from, to) -> {
            for (int s = from; s < to; s++) {
                switch (how) {
                    case LAST -> System.arraycopy(xd, (p.start(s) + p.length(s) - 1) * cols, od, s * cols, cols);
                    case FIRST -> System.arraycopy(xd, p.start(s) * cols, od, s * cols, cols);
                    case MEAN, SUM -> {
                        Arrays.fill(od, s * cols, (s + 1) * cols, 0f);
                        for (int r = p.start(s); r < p.start(s) + p.length(s); r++) CpuKernels.add(od, s * cols, xd, r * cols, cols);
                        if (how == Pooling.MEAN) CpuKernels.scale(od, s * cols, cols, 1f / p.length(s));
                    }
                }
            }
        });
    }

    @Override
    public void close() {
        par.close();
    }
}
