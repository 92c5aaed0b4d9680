package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** cuda/activation.cu: GELU and SwiGLU's silu(gate)·up on contiguous float arrays, with their backwards. */
public final class ActivationKernels {
    private final Cuda cuda;
    private final MethodHandle gelu;             // int brm_gelu(const float* x, float* out, long long n)
    private final MethodHandle geluBackward;     // int brm_gelu_backward(const float* x, const float* dy, float* dx, long long n)
    private final MethodHandle siluMul;          // int brm_silu_mul(const float* gate, const float* up, float* out, long long n)
    // int brm_silu_mul_backward(const float* gate, const float* up, const float* dy, float* dGate, float* dUp, long long n)
    private final MethodHandle siluMulBackward;

    public ActivationKernels(Cuda cuda) {
        this.cuda = cuda;
        gelu = cuda.bind("brm_gelu", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        geluBackward = cuda.bind("brm_gelu_backward", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
        siluMul = cuda.bind("brm_silu_mul", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
        siluMulBackward = cuda.bind("brm_silu_mul_backward", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
    }

    /** out [n] = gelu(x [n]) (exact, erf-based); out may be x. */
    public void gelu(MemorySegment x, MemorySegment out, long n) {
        cuda.call("brm_gelu", () -> (int) gelu.invokeExact(x, out, n));
    }

    /** dx [n] = dy [n] · gelu'(x [n]); dx may be dy. */
    public void geluBackward(MemorySegment x, MemorySegment dy, MemorySegment dx, long n) {
        cuda.call("brm_gelu_backward", () -> (int) geluBackward.invokeExact(x, dy, dx, n));
    }

    /** out [n] = silu(gate [n]) · up [n]; out may be gate or up. */
    public void siluMul(MemorySegment gate, MemorySegment up, MemorySegment out, long n) {
        cuda.call("brm_silu_mul", () -> (int) siluMul.invokeExact(gate, up, out, n));
    }

    /** dGate [n], dUp [n] = the gradients of siluMul for dy [n] (overwritten); either may be dy. */
    public void siluMulBackward(MemorySegment gate, MemorySegment up, MemorySegment dy, MemorySegment dGate, MemorySegment dUp, long n) {
        cuda.call("brm_silu_mul_backward", () -> (int) siluMulBackward.invokeExact(gate, up, dy, dGate, dUp, n));
    }
}
