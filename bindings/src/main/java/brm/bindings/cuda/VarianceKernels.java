package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** cuda/variance.cu: the Laplace predictive variance of a batch at one layer, reduced to per-sequence sums on the device. */
public final class VarianceKernels {
    private final Cuda cuda;
    // int brm_laplace_variance(const float* projected, const double* small_basis, const double* lambda_small, const double* lambda_wide,
    //                          const float* jacobian, int seqs, int r, int ks, int kw, int n, double delta, int transposed,
    //                          double* variance, double* pair_covariance, double* coefficients)
    private final MethodHandle variance;

    public VarianceKernels(Cuda cuda) {
        this.cuda = cuda;
        variance = cuda.bind("brm_laplace_variance", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_DOUBLE, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    }

    /**
     * One layer of the predictive: C_s = Qᵀ·P_s (or its transpose) for projected P [seqs·r, kw] (FP32) and smallBasis Q
     * [r, ks]; variance [seqs] += Σ C²/(λsmall_i·λwide_j + δ) (+ (‖J_s‖² − ‖C_s‖²)/δ when jacobian [seqs·r, n] is given),
     * pairCovariance [seqs/2] += the same cross terms of sequences (2g, 2g+1), coefficients [seqs, ks·kw] = C_s.
     * jacobian, pairCovariance and coefficients may be {@link MemorySegment#NULL}; all but P and J are FP64.
     */
    public void variance(MemorySegment projected, MemorySegment smallBasis, MemorySegment lambdaSmall, MemorySegment lambdaWide,
                         MemorySegment jacobian, int seqs, int r, int ks, int kw, int n, double delta, boolean transposed,
                         MemorySegment variance, MemorySegment pairCovariance, MemorySegment coefficients) {
        int t = transposed ? 1 : 0;
        cuda.call("brm_laplace_variance", () -> (int) this.variance.invokeExact(projected, smallBasis, lambdaSmall, lambdaWide, jacobian,
                seqs, r, ks, kw, n, delta, t, variance, pairCovariance, coefficients));
    }
}
