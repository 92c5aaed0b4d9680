package brm.laplace;

import brm.BrmException;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Eigendecomposition of a symmetric matrix in float64: A [n, n] = Q·Λ·Qᵀ, Q orthogonal.
 *
 * 1. Scale. A ← A / max|a_ij|, so no square below can overflow; Λ is scaled back at the end.
 *
 * 2. Householder tridiagonalisation, T = Hᵀ·A·H with H = H_0·H_1⋯H_{n-3}. Step k takes the column
 *    x = A[k+1.., k] (m = n−k−1 entries) and the reflector H_k = I − τ·v·vᵀ (v_0 = 1) with
 *    H_k·x = β·e_0:
 *        β = −sign(x_0)·‖x‖,   τ = (β − x_0)/β,   v_i = x_i/(x_0 − β)   (i ≥ 1)
 *    The trailing block B = A[k+1.., k+1..] becomes H_k·B·H_k as a symmetric rank-2 update:
 *        p = τ·B·v,   w = p − (τ/2)(pᵀv)·v,   B ← B − v·wᵀ − w·vᵀ
 *    Only the lower triangle is read and written. B·v on it visits each row once:
 *    (B·v)_i = Σ_{j<i} B_ij·v_j + B_ii·v_i + Σ_{j>i} B_ji·v_j, the last sum scattered from row j.
 *    d_k = A_kk and e_k = β are the diagonal and subdiagonal of T; v is kept in the unused upper
 *    part of row k. The updates are deferred over a panel of PANEL steps (as LAPACK's dsytrd): step
 *    j of a panel uses B = B_stored − Σ_{t<j} (v_t·w_tᵀ + w_t·v_tᵀ) through its column k and B·v,
 *    and the panel's rank-2·PANEL update is applied in one pass at its end. Each step then reads
 *    the trailing triangle once instead of three times (it does not fit in cache for n ≳ 700).
 *
 * 3. Zᵀ = Hᵀ = H_{n-3}⋯H_0 (H_k symmetric), accumulated from the right, last reflector first, so
 *    each one only touches the block [k+1.., k+1..]: row ← row − τ·(row·v)·vᵀ for each row of Zᵀ.
 *
 * 4. Implicit QL with Wilkinson shifts on T. For the unreduced block l..m (e_m ≈ 0 deflates:
 *    |e_m| ≤ ε·(|d_m| + |d_{m+1}|)), the shift σ is the eigenvalue of the 2×2 [d_l e_l; e_l d_{l+1}]
 *    nearer d_l; one QL step T − σI = Q·L, T ← L·Q + σI is done implicitly as Givens rotations
 *    G_i on planes (i, i+1), i = m−1 … l, chasing the bulge up. Each rotation also updates the
 *    eigenvector estimates Z ← Z·G_i, i.e. rows i, i+1 of Zᵀ; the rotations are buffered and
 *    replayed a few columns of Zᵀ at a time ({@link DoubleKernels#rotations}). Convergence is
 *    cubic; a block that has not split after MAX_SWEEPS steps is a failure.
 *
 * 5. Sort ascending, scale back, and write V [n, n] row-major with column k the k-th eigenvector:
 *    V[r·n + k] = Zᵀ[k, r].
 *
 * Cost ≈ (4/3)n³ (step 2) + (4/3)n³ (step 3) + ~6n³ (step 4: about n² rotations of 6n flops) flops.
 */
public final class SymmetricEigen {
    private static final double EPS = Math.ulp(1.0);
    private static final int MAX_SWEEPS = 60;
    /** Reflectors per panel of step 2; rows of Zᵀ per block of step 3. */
    private static final int PANEL = 32, BLOCK = 32;
    /** Jitters ε·trace/n tried by {@link #ofPsd} after a failed decomposition. */
    private static final double[] JITTERS = {1e-10, 1e-8, 1e-6};
    /**
     * Eigenvalues within ±TOLERANCE·max|λ| of 0 are set to 0; below it a factor is not PSD. The
     * eigensolver errs by ~n·ε·‖A‖ (≈ 5e-13·‖A‖ at n = 2048) and a float64-accumulated factor by as
     * little; 1e-10 leaves a wide margin. A factor summed in float32 (errors ~1e-7·‖A‖) fails it.
     */
    static final double TOLERANCE = 1e-10;

    private final double[] values, vectors;

    /** values [n] ascending and vectors [n, n] (column k for values[k]), as {@link #values} and {@link #vectors} describe them. */
    SymmetricEigen(double[] values, double[] vectors) {
        this.values = values;
        this.vectors = vectors;
    }

    /** Eigenvalues λ_0 ≤ λ_1 ≤ … ≤ λ_{n-1} [n] (the array itself, not a copy). */
    public double[] values() {
        return values;
    }

    /** Eigenvectors [n, n] row-major, column k (entries k, n+k, 2n+k, …) the unit eigenvector of λ_k (not a copy). */
    public double[] vectors() {
        return vectors;
    }

    /** Decomposes a [n, n] row-major, symmetric up to rounding (checked); the lower triangle is used. */
    public static SymmetricEigen of(double[] a, int n) {
        check(a, n, "matrix");
        var eigen = decompose(a, n, 0, MAX_SWEEPS);
        if (eigen == null) throw new BrmException("eigendecomposition of a " + n + "x" + n + " matrix did not converge");
        return eigen;
    }

    /**
     * Decomposes the PSD factor {@code name} [n, n]: on non-convergence retries A + ε·(trace/n)·I for
     * ε = 1e-10, 1e-8, 1e-6 (the shift is subtracted from Λ again), then sets eigenvalues within the
     * rounding band ±{@link #TOLERANCE}·max|λ| to exactly 0. A clearly negative eigenvalue, non-finite
     * or asymmetric input, or no convergence after every jitter is a BrmException naming the factor.
     */
    public static SymmetricEigen ofPsd(double[] a, int n, String name) {
        return ofPsd(a, n, name, TOLERANCE, MAX_SWEEPS);
    }

    /**
     * {@link #ofPsd(double[], int, String)} with another rounding band: a factor summed in FP32 (a GEMM
     * per batch) carries errors of ~1e-7·max|λ|, so its caller passes a band of that order.
     */
    public static SymmetricEigen ofPsd(double[] a, int n, String name, double tolerance) {
        return ofPsd(a, n, name, tolerance, MAX_SWEEPS);
    }

    /** {@link #ofPsd(double[], int, String)} with a QL step budget per eigenvalue (tests force failures). */
    static SymmetricEigen ofPsd(double[] a, int n, String name, int maxSweeps) {
        return ofPsd(a, n, name, TOLERANCE, maxSweeps);
    }

    private static SymmetricEigen ofPsd(double[] a, int n, String name, double tolerance, int maxSweeps) {
        check(a, n, name);
        var eigen = decompose(a, n, 0, maxSweeps);
        double trace = 0;
        for (int i = 0; i < n; i++) trace += a[i * n + i];
        for (int t = 0; eigen == null && t < JITTERS.length; t++) eigen = decompose(a, n, JITTERS[t] * trace / n, maxSweeps);
        if (eigen == null)
            throw new BrmException("eigendecomposition of " + name + " [" + n + ", " + n + "] failed after jitter up to "
                    + JITTERS[JITTERS.length - 1] + "·trace/n");
        return clampPsd(eigen, name, tolerance);
    }

    /**
     * The decomposition of the PSD factor {@code name} with eigenvalues within the rounding band ±{@link #TOLERANCE}·max|λ|
     * set to exactly 0 (in place); a clearly negative eigenvalue (below −tolerance·max|λ|) is a BrmException naming the factor.
     */
    static SymmetricEigen clampPsd(SymmetricEigen eigen, String name, double tolerance) {
        double[] lambda = eigen.values;
        int n = lambda.length;
        double tol = tolerance * Math.max(Math.abs(lambda[0]), Math.abs(lambda[n - 1]));
        if (lambda[0] < -tol)
            throw new BrmException(name + " is not positive semi-definite: eigenvalue " + lambda[0] + " against max |λ| "
                    + Math.max(-lambda[0], lambda[n - 1]) + " (tolerance " + tolerance + " relative)");
        // negatives within the band are rounding: 0; positives only within float64 rounding of the largest
        double zero = TOLERANCE * Math.max(Math.abs(lambda[0]), Math.abs(lambda[n - 1]));
        for (int i = 0; i < n && lambda[i] <= zero; i++) lambda[i] = 0;
        return eigen;
    }

    /** Shape, finiteness and symmetry (|a_ij − a_ji| ≤ TOLERANCE·max|a|) of a [n, n]. */
    static void check(double[] a, int n, String name) {
        if (n < 1 || a.length != (long) n * n)
            throw new BrmException(name + ": " + a.length + " values is not an n x n matrix with n = " + n);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            if (!Double.isFinite(a[i])) throw new BrmException(name + " has a non-finite entry " + a[i] + " at [" + i / n + ", " + i % n + "]");
            max = Math.max(max, Math.abs(a[i]));
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                if (Math.abs(a[i * n + j] - a[j * n + i]) > TOLERANCE * max)
                    throw new BrmException(name + " is not symmetric: [" + i + ", " + j + "] = " + a[i * n + j]
                            + " but [" + j + ", " + i + "] = " + a[j * n + i]);
    }

    /** The decomposition of a + shift·I [n, n] with λ reported less the shift, or null when QL does not converge. */
    private static SymmetricEigen decompose(double[] a, int n, double shift, int maxSweeps) {
        double scale = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) scale = Math.max(scale, Math.abs(a[i * n + j] + (i == j ? shift : 0)));
        if (scale == 0) scale = 1;
        double[] w = new double[n * n]; // lower triangle: ½(a_ij + a_ji)/scale
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) w[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]) / scale;
            w[i * n + i] = (a[i * n + i] + shift) / scale;
        }
        double[] d = new double[n], e = new double[n], tau = new double[n];
        tridiagonalise(w, n, d, e, tau);
        double[] zt = reflectorProduct(w, n, tau);
        if (!ql(d, e, zt, n, maxSweeps)) return null;

        Integer[] order = IntStream.range(0, n).boxed().sorted(Comparator.comparingDouble(i -> d[i])).toArray(Integer[]::new);
        double[] values = new double[n], vectors = new double[n * n];
        for (int k = 0; k < n; k++) {
            values[k] = d[order[k]] * scale - shift;
            int row = order[k] * n;
            for (int r = 0; r < n; r++) vectors[r * n + k] = zt[row + r];
        }
        return new SymmetricEigen(values, vectors);
    }

    /** Step 2 on the lower triangle of w [n, n]: d [n], e [n] (e_{n-1} = 0), τ [n]; v_k left in w[k, k+1..]. */
    private static void tridiagonalise(double[] w, int n, double[] d, double[] e, double[] tau) {
        double[] vp = new double[PANEL * n], wp = new double[PANEL * n]; // v_t, w_t of the panel [PANEL, n], absolute indices
        double[] x = new double[n];
        for (int k0 = 0; k0 < n - 2; k0 += PANEL) {
            int nb = Math.min(PANEL, n - 2 - k0);
            for (int j = 0; j < nb; j++) {
                int k = k0 + j, lo = k + 1, m = n - lo, o = j * n; // v_j = vp[o..o+n), w_j = wp[o..o+n)
                // column k and d_k of the updated matrix: stored values less the panel's pending updates
                double dk = w[k * n + k];
                for (int i = lo; i < n; i++) x[i] = w[i * n + k];
                for (int t = 0; t < j; t++) {
                    dk -= 2 * vp[t * n + k] * wp[t * n + k];
                    DoubleKernels.rank2(x, lo, wp[t * n + k], vp, t * n + lo, vp[t * n + k], wp, t * n + lo, m);
                }
                d[k] = dk;
                double x0 = x[lo], tail = 0;
                for (int i = lo + 1; i < n; i++) tail += x[i] * x[i];
                if (tail == 0) { // already tridiagonal in this column: H_k = I, nothing pending
                    e[k] = x0;
                    Arrays.fill(vp, o + lo, o + n, 0);
                    Arrays.fill(wp, o + lo, o + n, 0);
                    continue;
                }
                double beta = -Math.copySign(Math.sqrt(x0 * x0 + tail), x0), t0 = (beta - x0) / beta;
                tau[k] = t0;
                e[k] = beta;
                vp[o + lo] = 1;
                for (int i = lo + 1; i < n; i++) vp[o + i] = x[i] / (x0 - beta);
                System.arraycopy(vp, o + lo, w, k * n + lo, m); // kept for the reflector product

                // p = τ·B·v with B = stored lower triangle − Σ_t (v_t·w_tᵀ + w_t·v_tᵀ), built in wp row j
                Arrays.fill(wp, o + lo, o + n, 0);
                for (int i = lo; i < n; i++) {
                    int row = i * n;
                    double vi = vp[o + i];
                    wp[o + i] += DoubleKernels.dotAxpy(w, row + lo, vp, o + lo, vi, wp, o + lo, i - lo) + w[row + i] * vi;
                }
                for (int t = 0; t < j; t++) {
                    double wv = DoubleKernels.dot(wp, t * n + lo, vp, o + lo, m), vv = DoubleKernels.dot(vp, t * n + lo, vp, o + lo, m);
                    DoubleKernels.rank2(wp, o + lo, wv, vp, t * n + lo, vv, wp, t * n + lo, m);
                }
                for (int i = lo; i < n; i++) wp[o + i] *= t0;
                double half = 0.5 * t0 * DoubleKernels.dot(wp, o + lo, vp, o + lo, m);
                DoubleKernels.axpy(-half, vp, o + lo, wp, o + lo, m); // w = p − (τ/2)(pᵀv)·v
            }
            // apply the panel's rank-2·nb update to the lower triangle still to be reduced
            int end = k0 + nb;
            for (int i = end; i < n; i++)
                for (int t = 0; t < nb; t++)
                    DoubleKernels.rank2(w, i * n + end, vp[t * n + i], wp, t * n + end, wp[t * n + i], vp, t * n + end, i - end + 1);
        }
        if (n >= 2) {
            d[n - 2] = w[(n - 2) * n + n - 2];
            e[n - 2] = w[(n - 1) * n + n - 2];
        }
        d[n - 1] = w[n * n - 1];
    }

    /**
     * Step 3: Zᵀ = H_{n-3}⋯H_0 [n, n] from the reflectors left in w. Rows of Zᵀ transform
     * independently (row ← row − τ·(row·v)·vᵀ), so they are done BLOCK rows at a time: each reflector
     * is read once per block while the block's rows stay in cache.
     */
    private static double[] reflectorProduct(double[] w, int n, double[] tau) {
        double[] zt = new double[n * n];
        for (int i = 0; i < n; i++) zt[i * n + i] = 1;
        for (int i0 = 0; i0 < n; i0 += BLOCK) {
            int i1 = Math.min(n, i0 + BLOCK);
            for (int k = Math.min(n - 3, i1 - 2); k >= 0; k--) { // row i (= e_i at first) meets H_k for k < i
                if (tau[k] == 0) continue;
                int m = n - k - 1, vo = k * n + k + 1;
                for (int i = Math.max(i0, k + 1); i < i1; i++) {
                    int row = i * n + k + 1;
                    DoubleKernels.axpy(-tau[k] * DoubleKernels.dot(zt, row, w, vo, m), w, vo, zt, row, m);
                }
            }
        }
        return zt;
    }

    /** Step 4 on d [n], e [n], rotating rows of zt [n, n]; false when a block does not split in maxSweeps steps. */
    private static boolean ql(double[] d, double[] e, double[] zt, int n, int maxSweeps) {
        var rotations = new Rotations(zt, n);
        for (int l = 0; l < n; l++) {
            for (int sweep = 0; ; sweep++) {
                int m = l;
                while (m < n - 1 && Math.abs(e[m]) > EPS * (Math.abs(d[m]) + Math.abs(d[m + 1]))) m++;
                if (m == l) break;
                if (sweep == maxSweeps) return false;
                double g = (d[l + 1] - d[l]) / (2 * e[l]);
                double r = Math.hypot(g, 1);
                g = d[m] - d[l] + e[l] / (g + Math.copySign(r, g)); // d_m − σ, σ the Wilkinson shift
                double s = 1, c = 1, p = 0;
                int i = m - 1;
                for (; i >= l; i--) {
                    double f = s * e[i], b = c * e[i];
                    r = Math.hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0) { // underflow: the block splits at i+1, start over
                        d[i + 1] -= p;
                        e[m] = 0;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                    rotations.add(i, c, s);
                }
                if (r == 0 && i >= l) continue;
                d[l] -= p;
                e[l] = g;
                e[m] = 0;
            }
        }
        rotations.flush();
        return true;
    }

    /**
     * The Givens rotations of step 4 on Zᵀ [n, n], in order. Applied one by one, every sweep would
     * stream the whole of Zᵀ through memory; buffered, up to CAPACITY of them are replayed a few
     * columns at a time while those columns stay in cache.
     */
    private static final class Rotations {
        private static final int CAPACITY = 1 << 15;
        private final double[] zt;
        private final int n;
        private final int[] plane = new int[CAPACITY];
        private final double[] cos = new double[CAPACITY], sin = new double[CAPACITY];
        private int size;

        Rotations(double[] zt, int n) {
            this.zt = zt;
            this.n = n;
        }

        void add(int i, double c, double s) {
            if (size == CAPACITY) flush();
            plane[size] = i;
            cos[size] = c;
            sin[size] = s;
            size++;
        }

        void flush() {
            DoubleKernels.rotations(zt, n, plane, cos, sin, size);
            size = 0;
        }
    }
}
