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
 */
public final class CpuBackend implements Backend {
    private final Parallel par;
    /** Queries per attention tile: large enough for efficient GEMMs, small enough to waste little of the causal triangle. */
    private static final int QUERY_TILE = 64;
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
            if (rows < 0 || rows > this.rows) throw new IllegalArgumentException("tensor has " + this.rows + " rows, not " + rows);
            return new CpuTensor(data, rows, cols);
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

    /** Scratch for the LoRA bottleneck x·Aᵀ [rows, r] of {@link #linear}. */
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
        throw new UnsupportedOperationException("linearBackward");
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
        throw new UnsupportedOperationException("geluBackward");
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        throw new UnsupportedOperationException("layerNormBackward");
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        throw new UnsupportedOperationException("rmsNormBackward");
    }

    @Override
    public void siluMulBackward(Tensor gate, Tensor up, Tensor dy, Tensor dGate, Tensor dUp) {
        throw new UnsupportedOperationException("siluMulBackward");
    }

    @Override
    public void attentionBackward(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor dOut,
                                  Heads dq, Heads dk, Heads dv) {
        throw new UnsupportedOperationException("attentionBackward");
    }

    @Override
    public void poolBackward(Packing p, Pooling how, Tensor dPooled, Tensor dx) {
        throw new UnsupportedOperationException("poolBackward");
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
        int heads = q.count(), dim = q.dim();
        if (k.count() != v.count() || heads % k.count() != 0 || k.dim() != dim || v.dim() != dim
                || out.cols() != heads * dim || out.rows() != p.tokens())
            throw new IllegalArgumentException("attention shapes");
        int group = heads / k.count();
        par.forEach(p.seqs() * heads, task -> {
            int s = task / heads, h = task % heads;
            attendHead(p.start(s), p.length(s), h, h / group, q, k, v, causal, scale, cpu(out));
        });
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
        int dim = q.dim(), tile = Math.min(QUERY_TILE, len);
        float[] scores = attentionScratch.get();
        if (scores.length < tile * len) {
            scores = new float[tile * len];
            attentionScratch.set(scores);
        }
        float[] qd = cpu(q.tensor()).data, kd = cpu(k.tensor()).data, vd = cpu(v.tensor()).data;
        int qCols = q.tensor().cols(), kCols = k.tensor().cols(), vCols = v.tensor().cols();
        int qBase = start * qCols + q.offset() + h * q.stride();
        int kBase = start * kCols + k.offset() + kvHead * k.stride(), vBase = start * vCols + v.offset() + kvHead * v.stride();
        for (int t0 = 0; t0 < len; t0 += tile) {
            int m = Math.min(tile, len - t0), keys = causal ? t0 + m : len;
            Gemm.sgemm(false, true, m, keys, dim, scale, qd, qBase + t0 * qCols, qCols, kd, kBase, kCols, 0f, scores, 0, keys);
            for (int i = 0; i < m; i++) {
                int row = i * keys, n = causal ? t0 + i + 1 : len;
                float inv = 1f / CpuKernels.softmaxExp(scores, row, n, CpuKernels.max(scores, row, n));
                CpuKernels.scale(scores, row, n, inv);
                Arrays.fill(scores, row + n, row + keys, 0f);
            }
            Gemm.sgemm(false, false, m, dim, keys, 1f, scores, 0, keys, vd, vBase, vCols, 0f, out.data, (start + t0) * out.cols + h * dim, out.cols);
        }
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
                    case MEAN -> {
                        Arrays.fill(od, s * cols, (s + 1) * cols, 0f);
                        for (int r = p.start(s); r < p.start(s) + p.length(s); r++) CpuKernels.add(od, s * cols, xd, r * cols, cols);
                        CpuKernels.scale(od, s * cols, cols, 1f / p.length(s));
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
