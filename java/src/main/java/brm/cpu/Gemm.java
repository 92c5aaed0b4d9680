package brm.cpu;

/**
 * FP32 matrix products for the CPU backend.
 *
 * linear: y[rows, out] = x[rows, in] · Wᵀ + b, with W in nn.Linear layout [out, in], prepared once
 * as a {@link PackedWeight}. sgemm: the general row-major C = alpha·op(A)·op(B) + beta·C.
 *
 * PLACEHOLDER IMPLEMENTATION (naive loops, the API is final): replaced by the blocked, packed-panel
 * Vector API kernel; the naive loops move to the test tree as the reference.
 */
public final class Gemm {
    private Gemm() {}

    /** A weight [out, in] prepared for repeated products. */
    public static final class PackedWeight {
        final int out, in;
        final float[] w;

        private PackedWeight(float[] w, int out, int in) {
            this.w = w;
            this.out = out;
            this.in = in;
        }

        public int out() { return out; }
        public int in() { return in; }
    }

    /** Packs W [out, in] (row-major, nn.Linear layout); W is not kept. */
    public static PackedWeight pack(float[] w, int out, int in) {
        if ((long) out * in != w.length) throw new IllegalArgumentException("W has " + w.length + " values, not " + out + "x" + in);
        return new PackedWeight(w.clone(), out, in);
    }

    /** y[rows, out] at yOff = x[rows, in] at xOff · Wᵀ (+ bias[out] when non-null); single thread. */
    public static void linear(float[] x, int xOff, int rows, PackedWeight w, float[] bias, float[] y, int yOff) {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < w.out; o++) {
                float s = bias == null ? 0f : bias[o];
                for (int i = 0; i < w.in; i++) s += x[xOff + r * w.in + i] * w.w[o * w.in + i];
                y[yOff + r * w.out + o] = s;
            }
    }

    /**
     * C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, row-major with leading dimensions;
     * op(X) = Xᵀ when the flag is set. beta = 0 ignores C's old contents (NaN included). Single thread.
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float s = 0f;
                for (int p = 0; p < k; p++) {
                    float av = transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
                    float bv = transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j];
                    s += av * bv;
                }
                int ci = cOff + i * ldc + j;
                c[ci] = beta == 0f ? alpha * s : alpha * s + beta * c[ci];
            }
    }
}
