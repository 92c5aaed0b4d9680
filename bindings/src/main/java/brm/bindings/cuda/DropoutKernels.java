package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** cuda/dropout.cu: inverted dropout with brm.backend.DropoutMask's hash mask. */
public final class DropoutKernels {
    private final Cuda cuda;
    private final MethodHandle dropout;  // int brm_dropout(const float* x, float p, long long seed, float* out, long long n)

    public DropoutKernels(Cuda cuda) {
        this.cuda = cuda;
        dropout = cuda.bind("brm_dropout", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_FLOAT, JAVA_LONG, ADDRESS, JAVA_LONG));
    }

    /** out [n] = x [n] · keep / (1 - p), element i kept by DropoutMask(seed, i); out may be x. */
    public void dropout(MemorySegment x, float p, long seed, MemorySegment out, long n) {
        cuda.call("brm_dropout", () -> (int) dropout.invokeExact(x, p, seed, out, n));
    }
}
