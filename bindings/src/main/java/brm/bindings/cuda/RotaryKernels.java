package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** cuda/rotary.cu: rotate-half rotary embedding in place on strided heads. */
public final class RotaryKernels {
    private final Cuda cuda;
    // int brm_rotary(float* x, int rows, int cols, int offset, int stride, int count, int half,
    //                const float* cos, const float* sin, const int* positions, int inverse)
    private final MethodHandle rotary;

    public RotaryKernels(Cuda cuda) {
        this.cuda = cuda;
        rotary = cuda.bind("brm_rotary", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT));
    }

    /**
     * Rotates the first 2·half dims of the count heads of x [rows, cols] (head h of a row at offset + h·stride) by
     * the angles of cos, sin [maxPositions, half] at positions [rows] (device ints); inverse rotates backwards.
     */
    public void rotary(MemorySegment x, int rows, int cols, int offset, int stride, int count, int half,
                       MemorySegment cos, MemorySegment sin, MemorySegment positions, boolean inverse) {
        int backwards = inverse ? 1 : 0;
        cuda.call("brm_rotary", () -> (int) rotary.invokeExact(x, rows, cols, offset, stride, count, half, cos, sin, positions, backwards));
    }
}
