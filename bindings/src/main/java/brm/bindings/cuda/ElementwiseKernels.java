package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** cuda/elementwise.cu: element-wise ops on contiguous float arrays. */
public final class ElementwiseKernels {
    private final Cuda cuda;
    private final MethodHandle add;  // int brm_add(const float* a, const float* b, float* out, long long n)

    public ElementwiseKernels(Cuda cuda) {
        this.cuda = cuda;
        add = cuda.bind("brm_add", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
    }

    /** out [n] = a [n] + b [n]; out may be a or b. */
    public void add(MemorySegment a, MemorySegment b, MemorySegment out, long n) {
        cuda.call("brm_add", () -> (int) add.invokeExact(a, b, out, n));
    }
}
