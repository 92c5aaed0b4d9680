package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** cuda/embedding.cu: table lookups by token id and by position. */
public final class EmbeddingKernels {
    private final Cuda cuda;
    private final MethodHandle embed;         // int brm_embed(const int* ids, const float* table, float* out, int rows, int cols)
    private final MethodHandle addPositions;  // int brm_add_positions(const int* positions, const float* table, float* x, int rows, int cols)

    public EmbeddingKernels(Cuda cuda) {
        this.cuda = cuda;
        FunctionDescriptor lookup = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT);
        embed = cuda.bind("brm_embed", lookup);
        addPositions = cuda.bind("brm_add_positions", lookup);
    }

    /** out [rows, cols] = table [vocab, cols] at ids [rows] (device ints, each &lt; vocab). */
    public void embed(MemorySegment ids, MemorySegment table, MemorySegment out, int rows, int cols) {
        cuda.call("brm_embed", () -> (int) embed.invokeExact(ids, table, out, rows, cols));
    }

    /** x [rows, cols] += table [maxPositions, cols] at positions [rows] (device ints, each &lt; maxPositions). */
    public void addPositions(MemorySegment positions, MemorySegment table, MemorySegment x, int rows, int cols) {
        cuda.call("brm_add_positions", () -> (int) addPositions.invokeExact(positions, table, x, rows, cols));
    }
}
