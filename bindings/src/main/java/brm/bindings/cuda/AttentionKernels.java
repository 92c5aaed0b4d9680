package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * cuda/attention.cu: attention over a packed batch (flash-style forward and backward, GQA, strided heads) and
 * the KV-cache ops of decoding. Heads are {@link View}s; starts, positions and slots are int arrays on the device.
 */
public final class AttentionKernels {
    /**
     * Heads inside a row-major device tensor: head h of row r starts {@code row·r + head·h} floats after
     * {@code base} (head 0 of row 0).
     */
    public record View(MemorySegment base, int row, int head) {}

    private final Cuda cuda;
    // int brm_attention(const float* q, int qRow, int qHead, const float* k, int kRow, int kHead, const float* v, int vRow,
    //                   int vHead, float* out, const int* starts, int seqs, int maxLength, int heads, int kvHeads, int dim,
    //                   int causal, float scale)
    private final MethodHandle attention;
    // int brm_attention_backward(const float* q, int qRow, int qHead, const float* k, int kRow, int kHead, const float* v,
    //                            int vRow, int vHead, const float* dOut, float* dq, int dqRow, int dqHead, float* dk, int dkRow,
    //                            int dkHead, float* dv, int dvRow, int dvHead, float* stats, const int* starts, int seqs,
    //                            int tokens, int maxLength, int heads, int kvHeads, int dim, int causal, float scale)
    private final MethodHandle attentionBackward;
    // int brm_cache_append(const float* k, int kRow, int kHead, const float* v, int vRow, int vHead, float* keys, float* values,
    //                      const int* starts, const int* positions, const int* slots, int seqs, int tokens, int kvHeads, int dim,
    //                      int capacity)
    private final MethodHandle cacheAppend;
    // int brm_cached_attention(const float* q, int qRow, int qHead, const float* keys, const float* values, float* out,
    //                          const int* starts, const int* positions, const int* slots, int seqs, int tokens, int heads,
    //                          int kvHeads, int dim, int capacity, float scale)
    private final MethodHandle cachedAttention;

    public AttentionKernels(Cuda cuda) {
        this.cuda = cuda;
        attention = cuda.bind("brm_attention", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT));
        attentionBackward = cuda.bind("brm_attention_backward", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS,
                ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT));
        cacheAppend = cuda.bind("brm_cache_append", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        cachedAttention = cuda.bind("brm_cached_attention", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT));
    }

    /**
     * out [tokens, heads·dim] = softmax(scale·Q·Kᵀ)·V per sequence of starts [seqs+1] (causal or full) and query
     * head, key/value head h / (heads/kvHeads); dim ≤ 128.
     */
    public void attention(View q, View k, View v, MemorySegment out, MemorySegment starts, int seqs, int maxLength,
                          int heads, int kvHeads, int dim, boolean causal, float scale) {
        int c = causal ? 1 : 0;
        cuda.call("brm_attention", () -> (int) attention.invokeExact(q.base(), q.row(), q.head(), k.base(), k.row(), k.head(),
                v.base(), v.row(), v.head(), out, starts, seqs, maxLength, heads, kvHeads, dim, c, scale));
    }

    /**
     * Backward of {@link #attention} for dOut [tokens, heads·dim]: dq, dk, dv overwritten (they may be views of one
     * tensor); stats: device scratch of 2·tokens·heads floats.
     */
    public void attentionBackward(View q, View k, View v, MemorySegment dOut, View dq, View dk, View dv, MemorySegment stats,
                                  MemorySegment starts, int seqs, int tokens, int maxLength, int heads, int kvHeads, int dim,
                                  boolean causal, float scale) {
        int c = causal ? 1 : 0;
        cuda.call("brm_attention_backward", () -> (int) attentionBackward.invokeExact(q.base(), q.row(), q.head(),
                k.base(), k.row(), k.head(), v.base(), v.row(), v.head(), dOut, dq.base(), dq.row(), dq.head(),
                dk.base(), dk.row(), dk.head(), dv.base(), dv.row(), dv.head(), stats, starts, seqs, tokens, maxLength,
                heads, kvHeads, dim, c, scale));
    }

    /**
     * keys [slots·kvHeads·dim, capacity] (transposed) and values [slots·capacity, kvHeads·dim] at each row's slot
     * (slots [seqs]) and position (positions [tokens]) = the row's k and v heads.
     */
    public void cacheAppend(View k, View v, MemorySegment keys, MemorySegment values, MemorySegment starts,
                            MemorySegment positions, MemorySegment slots, int seqs, int tokens, int kvHeads, int dim, int capacity) {
        cuda.call("brm_cache_append", () -> (int) cacheAppend.invokeExact(k.base(), k.row(), k.head(), v.base(), v.row(), v.head(),
                keys, values, starts, positions, slots, seqs, tokens, kvHeads, dim, capacity));
    }

    /** out [tokens, heads·dim]: each row's query heads attend the cached positions ≤ its own of its slot; dim ≤ 128. */
    public void cachedAttention(View q, MemorySegment keys, MemorySegment values, MemorySegment out, MemorySegment starts,
                                MemorySegment positions, MemorySegment slots, int seqs, int tokens, int heads, int kvHeads,
                                int dim, int capacity, float scale) {
        cuda.call("brm_cached_attention", () -> (int) cachedAttention.invokeExact(q.base(), q.row(), q.head(), keys, values, out,
                starts, positions, slots, seqs, tokens, heads, kvHeads, dim, capacity, scale));
    }
}
