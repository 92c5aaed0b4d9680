package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** cuda/kfac.cu: K-FAC factors summed in FP64 on the device from FP32 rows. */
public final class KfacKernels {
    private final Cuda cuda;
    private final MethodHandle accumulate;  // int brm_kfac_accumulate(const float* rows, int b, int n, float scale, double* m)
    private final MethodHandle mirror;      // int brm_kfac_mirror(double* m, int n)

    public KfacKernels(Cuda cuda) {
        this.cuda = cuda;
        accumulate = cuda.bind("brm_kfac_accumulate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS));
        mirror = cuda.bind("brm_kfac_mirror", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    }

    /** The lower triangle of m [n, n] (FP64) += scale²·rowsᵀ·rows for rows [b, n] (FP32); the upper triangle is left stale. */
    public void accumulate(MemorySegment rows, int b, int n, float scale, MemorySegment m) {
        cuda.call("brm_kfac_accumulate", () -> (int) accumulate.invokeExact(rows, b, n, scale, m));
    }

    /** m [n, n]: the upper triangle = the lower one, making the accumulated factor whole. */
    public void mirror(MemorySegment m, int n) {
        cuda.call("brm_kfac_mirror", () -> (int) mirror.invokeExact(m, n));
    }
}
