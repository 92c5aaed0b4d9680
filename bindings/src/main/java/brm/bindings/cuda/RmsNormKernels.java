package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** cuda/rmsnorm.cu: RMSNorm over the rows of [rows, n] and its backward for the input. */
public final class RmsNormKernels {
    private final Cuda cuda;
    // int brm_rmsnorm(const float* x, const float* weight, float eps, float* out, int rows, int n)
    private final MethodHandle forward;
    // int brm_rmsnorm_backward(const float* x, const float* weight, float eps, const float* dy, float* dx, int rows, int n)
    private final MethodHandle backward;

    public RmsNormKernels(Cuda cuda) {
        this.cuda = cuda;
        forward = cuda.bind("brm_rmsnorm", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_INT, JAVA_INT));
        backward = cuda.bind("brm_rmsnorm_backward", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT));
    }

    /** out [rows, n] = rmsNorm(x [rows, n]) · weight [n]; out may be x. */
    public void forward(MemorySegment x, MemorySegment weight, float eps, MemorySegment out, int rows, int n) {
        cuda.call("brm_rmsnorm", () -> (int) forward.invokeExact(x, weight, eps, out, rows, n));
    }

    /** dx [rows, n] += the gradient of x for dy [rows, n]. */
    public void backward(MemorySegment x, MemorySegment weight, float eps, MemorySegment dy, MemorySegment dx, int rows, int n) {
        cuda.call("brm_rmsnorm_backward", () -> (int) backward.invokeExact(x, weight, eps, dy, dx, rows, n));
    }
}
