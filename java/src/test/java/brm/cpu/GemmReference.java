package brm.cpu;

/**
 * The naive product loops, accumulating in double: the reference {@link Gemm} is tested against.
 *
 *   C[i, j] = alpha · Σ_p op(A)[i, p] · op(B)[p, j] + beta · C[i, j]   (alpha = 0 ignores A, B; beta = 0 ignores C)
 *   scale[i, j] = |alpha| · Σ_p |op(A)[i, p] · op(B)[p, j]| + |beta · C[i, j]|
 *
 * scale bounds fp32 rounding: any summation order of the k terms, plus the roundings of alpha,
 * beta·C, the bias and the final add, errs by at most (k + 4)·2⁻²⁴·scale to first order
 * (linear adds |bias| to scale).
 */
final class GemmReference {
    private GemmReference() {}

    /** The exact (double) product [m·n, row-major] and its rounding scale. */
    record Expected(double[] value, double[] scale) {}

    /** Expected C[m, n] of sgemm with the same arguments; C is only read. */
    static Expected sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                          float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                          float beta, float[] c, int cOff, int ldc) {
        double[] value = new double[m * n], scale = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0, abs = 0;
                for (int p = 0; alpha != 0f && p < k; p++) { // alpha = 0 never reads A or B
                    double term = (double) (transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p])
                            * (transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j]);
                    s += term;
                    abs += Math.abs(term);
                }
                double old = beta == 0f ? 0 : (double) beta * c[cOff + i * ldc + j];
                value[i * n + j] = alpha * s + old;
                scale[i * n + j] = Math.abs(alpha) * abs + Math.abs(old);
            }
        return new Expected(value, scale);
    }

    /** Expected y[rows, out] = x[rows, in] · Wᵀ + bias + beta · y, with W [out, in] unpacked; y is only read. */
    static Expected linear(float[] x, int xOff, int rows, float[] w, int out, int in, float[] bias, float beta, float[] y, int yOff) {
        Expected e = sgemm(false, true, rows, out, in, 1f, x, xOff, in, w, 0, in, beta, y, yOff, out);
        if (bias != null)
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < out; o++) {
                    e.value[r * out + o] += bias[o];
                    e.scale[r * out + o] += Math.abs(bias[o]);
                }
        return e;
    }
}
