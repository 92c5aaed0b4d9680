package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** cuda/pooling.cu: one vector per packed sequence (last, mean, first or sum of its rows) and its backward. */
public final class PoolingKernels {
    /** The {@code how} codes of the C entry points. */
    public static final int LAST = 0, MEAN = 1, FIRST = 2, SUM = 3;

    private final Cuda cuda;
    // int brm_pool(const int* starts, int seqs, const float* x, int cols, int how, float* out)
    private final MethodHandle pool;
    // int brm_pool_backward(const int* starts, int seqs, int tokens, int how, const float* dPooled, float* dx, int cols)
    private final MethodHandle poolBackward;

    public PoolingKernels(Cuda cuda) {
        this.cuda = cuda;
        pool = cuda.bind("brm_pool", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
        poolBackward = cuda.bind("brm_pool_backward", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    }

    /** out [seqs, cols] = the pooled rows of x [tokens, cols], sequence s at rows [starts[s], starts[s+1]) (device ints). */
    public void pool(MemorySegment starts, int seqs, MemorySegment x, int cols, int how, MemorySegment out) {
        cuda.call("brm_pool", () -> (int) pool.invokeExact(starts, seqs, x, cols, how, out));
    }

    /** dx [tokens, cols] = dPooled [seqs, cols] spread back to the rows pooling read, 0 elsewhere. */
    public void poolBackward(MemorySegment starts, int seqs, int tokens, int how, MemorySegment dPooled, MemorySegment dx, int cols) {
        cuda.call("brm_pool_backward", () -> (int) poolBackward.invokeExact(starts, seqs, tokens, how, dPooled, dx, cols));
    }
}
