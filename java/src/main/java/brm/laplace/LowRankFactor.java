package brm.laplace;

import brm.BrmException;

/**
 * A rank-K sketch of a PSD factor M = Σ_i m_i·m_iᵀ [n, n], built by incremental SVD in float64 from
 * batches of the vectors m_i without ever forming M:
 *
 *   M ≈ U·diag(s²)·Uᵀ,   U [n, r] orthonormal, s² descending, r = min(K, vectors seen, n)
 *
 * Adding b vectors (Brand's update): C = [U·diag(s) | m_1 … m_b] [n, c], c = r + b, has
 * C·Cᵀ = U·diag(s²)·Uᵀ + Σ m_i·m_iᵀ. Then
 *   1. thin QR by Householder reflectors, C = Q·R, Q [n, p] orthonormal, R [p, c], p = min(c, n)
 *   2. R·Rᵀ [p, p] = W·Λ·Wᵀ ({@link SymmetricEigen}), so C·Cᵀ = (Q·W)·Λ·(Q·W)ᵀ
 *   3. keep the K largest: U ← Q·W[:, top K], s² ← λ_top K (tiny negative rounding → 0)
 * Both Q and W are orthogonal to rounding, so U stays orthonormal however many updates run, and
 * only R·Rᵀ (squared singular values: absolute error ~ε·λ_max, the accuracy M itself has) is
 * formed. Exact while M has rank ≤ K. Otherwise each truncation drops a PSD part, so the sketch
 * M̃ ⪯ M and every λ_k(M̃) ≤ λ_k(M).
 *
 * Storage is Uᵀ [r, n] (rows are the eigenvectors) so the columns of C are contiguous rows. A batch
 * costs O(n·c²); batches are split into at most K vectors (c ≤ 2K), which makes the whole sketch
 * O(n·K) per vector.
 */
public final class LowRankFactor {
    private final int n, k;
    private double[] ut = new double[0], values = new double[0]; // Uᵀ [r, n], s² [r] descending
    private int rank;

    private LowRankFactor(int n, int k) {
        this.n = n;
        this.k = k;
    }

    /** An empty sketch of an [n, n] factor keeping at most k directions. */
    public static LowRankFactor of(int n, int k) {
        if (n < 1 || k < 1) throw new BrmException("low-rank factor needs n ≥ 1 and k ≥ 1, got n = " + n + ", k = " + k);
        return new LowRankFactor(n, k);
    }

    public int dim() {
        return n;
    }

    /** r = min(K, vectors added, n): the number of kept directions. */
    public int rank() {
        return rank;
    }

    /** s² [r], descending: the eigenvalues of the sketch. */
    public double[] values() {
        return values.clone();
    }

    /** U [n, r] row-major, column j (entries j, r+j, 2r+j, …) the unit eigenvector of values()[j]. */
    public double[] vectors() {
        double[] u = new double[n * rank];
        for (int j = 0; j < rank; j++)
            for (int i = 0; i < n; i++) u[i * rank + j] = ut[j * n + i];
        return u;
    }

    /** Adds the b vectors m_i given as the rows of rows [b, n] row-major: M += Σ m_i·m_iᵀ. */
    public void add(double[] rows, int n, int b) {
        if (n != this.n || b < 0 || rows.length != (long) b * n)
            throw new BrmException("low-rank factor of dimension " + this.n + ": got " + rows.length + " values as " + b + " x " + n);
        for (int i = 0; i < rows.length; i++)
            if (!Double.isFinite(rows[i])) throw new BrmException("low-rank factor update has a non-finite value " + rows[i] + " in row " + i / n);
        for (int start = 0; start < b; start += k) update(rows, start, Math.min(k, b - start));
    }

    /** Brand's update with rows [start, start+b) of rows [*, n]. */
    private void update(double[] rows, int start, int b) {
        int c = rank + b, p = Math.min(c, n);
        double[] ct = new double[c * n]; // Cᵀ [c, n]
        for (int j = 0; j < rank; j++) {
            double s = Math.sqrt(values[j]);
            for (int i = 0; i < n; i++) ct[j * n + i] = s * ut[j * n + i];
        }
        System.arraycopy(rows, start * n, ct, rank * n, b * n);

        // 1. C = Q·R: reflector j zeroes column j of C (row j of Cᵀ) below j; v_j (v_j[j] = 1) stays in that row
        double[] r = new double[p * c], tau = new double[p]; // R [p, c]
        for (int j = 0; j < p; j++) {
            int row = j * n;
            double x0 = ct[row + j], tail = 0;
            for (int i = j + 1; i < n; i++) tail += ct[row + i] * ct[row + i];
            double beta = x0;
            if (tail > 0) {
                beta = -Math.copySign(Math.sqrt(x0 * x0 + tail), x0);
                tau[j] = (beta - x0) / beta;
                for (int i = j + 1; i < n; i++) ct[row + i] /= x0 - beta;
            }
            ct[row + j] = 1;
            r[j * c + j] = beta;
            for (int l = j + 1; l < c; l++) {
                int other = l * n + j;
                if (tau[j] != 0)
                    DoubleKernels.axpy(-tau[j] * DoubleKernels.dot(ct, other, ct, row + j, n - j), ct, row + j, ct, other, n - j);
                r[j * c + l] = ct[other];
            }
        }

        // 2. R·Rᵀ [p, p] = W·Λ·Wᵀ; R is upper trapezoidal, so (R·Rᵀ)_ij = Σ_{l ≥ max(i, j)} R_il·R_jl
        double[] g = new double[p * p];
        for (int i = 0; i < p; i++)
            for (int j = 0; j <= i; j++)
                g[i * p + j] = g[j * p + i] = DoubleKernels.dot(r, i * c + i, r, j * c + i, c - i);
        var eig = SymmetricEigen.of(g, p);

        // 3. U ← Q·W[:, top K]: each kept w, padded to n, goes through H_{p-1}, …, H_0
        int kept = Math.min(k, p);
        double[] next = new double[kept * n], w = eig.vectors(), lambda = eig.values();
        values = new double[kept];
        for (int q = 0; q < kept; q++) {
            int col = p - 1 - q; // descending
            values[q] = Math.max(lambda[col], 0);
            for (int i = 0; i < p; i++) next[q * n + i] = w[i * p + col];
        }
        for (int j = p - 1; j >= 0; j--) {
            if (tau[j] == 0) continue;
            for (int q = 0; q < kept; q++) {
                int y = q * n + j;
                DoubleKernels.axpy(-tau[j] * DoubleKernels.dot(next, y, ct, j * n + j, n - j), ct, j * n + j, next, y, n - j);
            }
        }
        ut = next;
        rank = kept;
    }
}
