package brm.laplace;

import brm.backend.Backend;
import brm.backend.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * One K-FAC factor M [n, n] = Σ_rows v·vᵀ being accumulated over a data set: either in full, in float64
 * ({@link LaplaceKernels#factorSum}: on the host from one FP32 backend product per batch, or on the device),
 * or, for a side wider than the low-rank threshold, as a rank-K {@link LowRankFactor} sketch fed the rows
 * themselves.
 */
final class Factor {
    /** FP32 batch products leave rounding of ~1e-7·max|λ|: a band well above it, far below real curvature. */
    private static final double TOLERANCE = 1e-5;

    final String name;
    final int n;
    private final Backend backend;
    private final LaplaceKernels.FactorSum sum;
    private final LowRankFactor sketch;

    /** @param lowRank the sketch rank, or 0 for the full factor */
    Factor(String name, int n, int lowRank, Backend backend, LaplaceKernels kernels) {
        this.name = name;
        this.n = n;
        this.backend = backend;
        this.sum = lowRank > 0 ? null : kernels.factorSum(n);
        this.sketch = lowRank > 0 ? LowRankFactor.of(n, lowRank) : null;
    }

    boolean lowRank() {
        return sketch != null;
    }

    /** M += scale² · Vᵀ·V for rows V [b, n] on the backend. */
    void add(Tensor rows, float scale) {
        if (sketch != null) {
            float[] v = backend.download(rows);
            double[] scaled = new double[v.length];
            for (int i = 0; i < v.length; i++) scaled[i] = (double) v[i] * scale;
            sketch.add(scaled, n, rows.rows());
            return;
        }
        sum.add(rows, scale);
    }

    /**
     * The eigenbases of factors, each divided by its count (count 1: as accumulated) and symmetrised: a sketch's
     * as it is, the full ones decomposed together by the kernels (which may batch them).
     */
    static List<Eigenbasis> eigenbases(LaplaceKernels kernels, List<Factor> factors, List<Double> counts) {
        List<LaplaceKernels.Symmetric> full = new ArrayList<>();
        for (int i = 0; i < factors.size(); i++) {
            Factor f = factors.get(i);
            if (f.sketch == null) full.add(new LaplaceKernels.Symmetric(f.name, f.n, f.matrix(counts.get(i))));
        }
        List<SymmetricEigen> decomposed = full.isEmpty() ? List.of() : kernels.eigenPsd(full, TOLERANCE);
        List<Eigenbasis> out = new ArrayList<>();
        int next = 0;
        for (int i = 0; i < factors.size(); i++) {
            Factor f = factors.get(i);
            if (f.sketch != null) {
                double[] values = f.sketch.values().clone();
                for (int k = 0; k < values.length; k++) values[k] /= counts.get(i);
                out.add(new Eigenbasis(f.n, values, f.sketch.vectors().clone()));
            } else {
                SymmetricEigen e = decomposed.get(next++);
                out.add(new Eigenbasis(f.n, e.values(), e.vectors()));
            }
        }
        return out;
    }

    /** The full factor [n, n] divided by count and symmetrised; null for a sketch. */
    double[] matrix(double count) {
        if (sum == null) return null;
        double[] s = sum.sum();
        double[] m = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) m[i * n + j] = 0.5 * (s[i * n + j] + s[j * n + i]) / count;
        return m;
    }
}
