package brm.laplace;

import brm.backend.Backend;
import brm.backend.CudaBackend;
import brm.backend.Tensor;

import java.util.List;

/**
 * The hot paths of the Laplace fit and predictive behind one seam, so that {@link Factor}, {@link Laplace} and
 * {@link Predictive} do not depend on the backend:
 *   {@link HostLaplaceKernels}  any backend: a backend GEMM per batch summed in float64 on the host,
 *                               eigendecompositions by {@link SymmetricEigen}, coefficients on the host
 *   {@link CudaLaplaceKernels}  a {@link CudaBackend}: brm's kernels (cuda/kfac.cu, eigen.cu, variance.cu), factors
 *                               summed in float64 on the device, Jacobi (or cuSOLVER) eigendecompositions, and the predictive
 *                               variance reduced on the device to numbers per sequence
 */
interface LaplaceKernels {
    static LaplaceKernels of(Backend backend) {
        return backend instanceof CudaBackend cuda ? new CudaLaplaceKernels(cuda) : new HostLaplaceKernels(backend);
    }

    /** An empty K-FAC factor sum M [n, n] in float64. */
    FactorSum factorSum(int n);

    /** A K-FAC factor being summed over a data set. */
    interface FactorSum {
        /** M += scale²·rowsᵀ·rows for the rows [b, n] of one batch, on the backend. */
        void add(Tensor rows, float scale);

        /** M [n, n] as accumulated, on the host (not a copy; a device sum is downloaded once and takes no more rows). */
        double[] sum();
    }

    /** A symmetric matrix a [n, n] row-major, named for errors. */
    record Symmetric(String name, int n, double[] a) {}

    /**
     * The eigendecompositions of PSD factors as {@link SymmetricEigen#ofPsd(double[], int, String, double)} makes
     * them (checked, eigenvalues ascending, rounding-level ones clamped to 0, tolerance the band of negative
     * ones allowed), in the order given; implementations may decompose several at once.
     */
    List<SymmetricEigen> eigenPsd(List<Symmetric> factors, double tolerance);

    /**
     * The coefficients of one layer for each of seqs sequences: C̃_s = Qᵀ·P_s [ks, kw] with P_s the rows
     * [s·r, (s+1)·r) of projected [seqs·r, kw] and Q = small.vectors() [r, ks], laid out [ks, kw] row-major or,
     * transposed, as C̃_sᵀ [kw, ks] (see {@link Predictive}).
     */
    double[][] coefficients(Tensor projected, int seqs, int r, Eigenbasis small, int kw, boolean transposed);

    /**
     * Per-sequence variances (and pair covariances) of one batch summed over layers where the coefficients
     * themselves never reach the host, or null where they do ({@link HostLaplaceKernels}).
     */
    VarianceSums varianceSums(int seqs, boolean pairs);

    /** var_s and cov(2i, 2i+1) of one batch, summed layer by layer (see {@link Predictive}). */
    interface VarianceSums {
        /**
         * Adds one layer: coefficients C̃_s as in {@link #coefficients}, weights 1/(λsmall_i·λwide_j + δ), and for a
         * low-rank layer the remainder of the Jacobians jacobian [seqs·r, n] (null when both factors are full).
         */
        void add(Tensor projected, Tensor jacobian, int r, Eigenbasis small, Eigenbasis wide, double delta, boolean transposed);

        /** var_s [seqs]. */
        double[] variances();

        /** cov(2i, 2i+1) [seqs/2] (pairs only). */
        double[] pairCovariances();
    }
}
