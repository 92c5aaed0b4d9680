package brm.bindings.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * cuda/eigen.cu: symmetric eigendecompositions in FP64 by parallel cyclic Jacobi, eigenvalues ascending and
 * eigenvectors as the columns of [n, n] row-major: many small matrices at once (one block each) or one large one.
 */
public final class EigenKernels {
    /** The largest n of {@link #batched}. */
    public static final int BATCHED_MAX = 64;

    private final Cuda cuda;
    // int brm_eigen_jacobi_batched(const double* a, int n, int count, int max_sweeps, double* values, double* vectors, int* sweeps)
    private final MethodHandle batched;
    // int brm_eigen_jacobi(double* a, int n, int max_sweeps, double* values, double* vectors, double* rotations, int* counts, int* sweeps)
    private final MethodHandle large;

    public EigenKernels(Cuda cuda) {
        this.cuda = cuda;
        batched = cuda.bind("brm_eigen_jacobi_batched",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        large = cuda.bind("brm_eigen_jacobi",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    }

    /**
     * a [count, n, n] (n ≤ {@link #BATCHED_MAX}) -> values [count, n] ascending, vectors [count, n, n] (column k the
     * eigenvector of values[k]), sweeps [count] ints: the sweeps each matrix took, −1 where maxSweeps were not enough.
     */
    public void batched(MemorySegment a, int n, int count, int maxSweeps, MemorySegment values, MemorySegment vectors, MemorySegment sweeps) {
        if (n < 1 || n > BATCHED_MAX) throw new IllegalArgumentException("brm_eigen_jacobi_batched: n = " + n + " is not in [1, " + BATCHED_MAX + "]");
        cuda.call("brm_eigen_jacobi_batched", () -> (int) batched.invokeExact(a, n, count, maxSweeps, values, vectors, sweeps));
    }

    /** Device work of {@link #large}: rotations [3·(n+1)/2] doubles, then counts [n+2] ints. */
    public static long largeWorkBytes(int n) {
        return 8L * rotationDoubles(n) + 4L * (n + 2);
    }

    private static long rotationDoubles(int n) {
        return 3L * ((n + 1) / 2);
    }

    /**
     * a [n, n] symmetric (overwritten) -> values [n] ascending, vectors [n, n] (column k the eigenvector of
     * values[k]); work: {@link #largeWorkBytes} of device memory. Returns the sweeps taken, or −1 when
     * maxSweeps were not enough (values and vectors then unset).
     */
    public int large(MemorySegment a, int n, int maxSweeps, MemorySegment values, MemorySegment vectors, MemorySegment work) {
        MemorySegment rotations = work, counts = MemorySegment.ofAddress(work.address() + 8L * rotationDoubles(n));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sweeps = arena.allocate(JAVA_INT);
            cuda.call("brm_eigen_jacobi", () -> (int) large.invokeExact(a, n, maxSweeps, values, vectors, rotations, counts, sweeps));
            return sweeps.get(JAVA_INT, 0);
        }
    }
}
