package brm.laplace;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * One K-FAC factor M [n, n] = Σ_rows v·vᵀ being accumulated over a data set: either in full, in
 * float64 on the host (each batch's Vᵀ·V is one FP32 product on the backend, then added in float64),
 * or, for a side wider than the low-rank threshold, as a rank-K {@link LowRankFactor} sketch fed the
 * rows themselves.
 */
final class Factor {
    final String name;
    final int n;
    private final double[] sum;
    private final LowRankFactor sketch;

    /** @param lowRank the sketch rank, or 0 for the full factor */
    Factor(String name, int n, int lowRank) {
        this.name = name;
        this.n = n;
        this.sum = lowRank > 0 ? null : new double[n * n];
        this.sketch = lowRank > 0 ? LowRankFactor.of(n, lowRank) : null;
    }

    boolean lowRank() {
        return sketch != null;
    }

    /** M += scale² · Vᵀ·V for rows V [b, n] on the backend; scratch is a [n, n] backend buffer. */
    void add(Backend backend, Tensor rows, float scale, Tensor scratch) {
        if (sketch != null) {
            float[] v = backend.download(rows);
            double[] scaled = new double[v.length];
            for (int i = 0; i < v.length; i++) scaled[i] = (double) v[i] * scale;
            sketch.add(scaled, n, rows.rows());
            return;
        }
        backend.matmul(rows, true, rows, false, scale * scale, 0f, scratch);
        float[] m = backend.download(scratch);
        for (int i = 0; i < sum.length; i++) sum[i] += m[i];
    }

    /** The factor divided by count (count 1: as accumulated), symmetrised, as eigenvalues and vectors. */
    Eigenbasis eigenbasis(double count) {
        if (sketch != null) {
            double[] values = sketch.values().clone();
            for (int i = 0; i < values.length; i++) values[i] /= count;
            return new Eigenbasis(n, values, sketch.vectors().clone());
        }
        double[] m = matrix(count);
        // FP32 batch products leave rounding of ~1e-7·max|λ|: a band well above it, far below real curvature
        SymmetricEigen e = SymmetricEigen.ofPsd(m, n, name, 1e-5);
        return new Eigenbasis(n, e.values(), e.vectors());
    }

    /** The full factor [n, n] divided by count and symmetrised; null for a sketch. */
    double[] matrix(double count) {
        if (sum == null) return null;
        double[] m = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) m[i * n + j] = 0.5 * (sum[i * n + j] + sum[j * n + i]) / count;
        return m;
    }
}
