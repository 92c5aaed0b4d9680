package brm.bindings.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuda/gemm.cu: row-major matrix products c [m, n] = alpha · op(a)·op(b) + beta · c (+ bias [n] on every row),
 * op(x) = xᵀ when its flag is set, in FP32 or with BF16/FP16 inputs on the tensor cores; per-sequence outer
 * products; FP32 to 16-bit conversion. Pointers are device addresses; {@link MemorySegment#NULL} for no bias.
 */
public final class GemmKernels {
    private final Cuda cuda;
    // int brm_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
    //               const float* b, int ldb, float beta, float* c, int ldc, const float* bias)
    private final MethodHandle sgemm;
    // int brm_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const __nv_bfloat16* a, int lda,
    //                   const __nv_bfloat16* b, int ldb, float beta, float* c, int ldc, const float* bias)
    private final MethodHandle gemmBf16;
    // int brm_gemm_fp16(int trans_a, int trans_b, int m, int n, int k, float alpha, const __half* a, int lda,
    //                   const __half* b, int ldb, float beta, float* c, int ldc, const float* bias)
    private final MethodHandle gemmFp16;
    // int brm_segment_outer(const int* starts, int seqs, int m, int n, float alpha, const float* a, const float* b, float* out)
    private final MethodHandle segmentOuter;
    // int brm_float_to_bf16(const float* in, __nv_bfloat16* out, long long n)
    private final MethodHandle toBf16;
    // int brm_float_to_fp16(const float* in, __half* out, long long n)
    private final MethodHandle toFp16;

    public GemmKernels(Cuda cuda) {
        this.cuda = cuda;
        sgemm = cuda.bind("brm_sgemm", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        gemmBf16 = cuda.bind("brm_gemm_bf16", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        gemmFp16 = cuda.bind("brm_gemm_fp16", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS));
        segmentOuter = cuda.bind("brm_segment_outer", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
                ADDRESS, ADDRESS, ADDRESS));
        toBf16 = cuda.bind("brm_float_to_bf16", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        toFp16 = cuda.bind("brm_float_to_fp16", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
    }

    /** FP32: a [m, k] ([k, m] when transA), b [k, n] ([n, k] when transB), c [m, n], bias [n] or NULL; lda, ldb, ldc their row lengths. */
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a, int lda, MemorySegment b, int ldb,
                      float beta, MemorySegment c, int ldc, MemorySegment bias) {
        int ta = transA ? 1 : 0, tb = transB ? 1 : 0;
        cuda.call("brm_sgemm", () -> (int) sgemm.invokeExact(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias));
    }

    /** As {@link #sgemm} with a and b in BF16 (tensor cores, FP32 accumulation); c and bias FP32. */
    public void gemmBf16(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a, int lda, MemorySegment b, int ldb,
                         float beta, MemorySegment c, int ldc, MemorySegment bias) {
        int ta = transA ? 1 : 0, tb = transB ? 1 : 0;
        cuda.call("brm_gemm_bf16", () -> (int) gemmBf16.invokeExact(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias));
    }

    /** As {@link #sgemm} with a and b in FP16 (tensor cores, FP32 accumulation); c and bias FP32. */
    public void gemmFp16(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a, int lda, MemorySegment b, int ldb,
                         float beta, MemorySegment c, int ldc, MemorySegment bias) {
        int ta = transA ? 1 : 0, tb = transB ? 1 : 0;
        cuda.call("brm_gemm_fp16", () -> (int) gemmFp16.invokeExact(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias));
    }

    /**
     * out [seqs·m, n], block s = alpha · a_sᵀ·b_s, a_s and b_s the rows [starts[s], starts[s+1]) of a [tokens, m] and
     * b [tokens, n]; starts [seqs + 1] on the device; seqs ≤ 65535.
     */
    public void segmentOuter(MemorySegment starts, int seqs, int m, int n, float alpha, MemorySegment a, MemorySegment b, MemorySegment out) {
        cuda.call("brm_segment_outer", () -> (int) segmentOuter.invokeExact(starts, seqs, m, n, alpha, a, b, out));
    }

    /** out [n] BF16 = in [n] FP32, rounded to nearest even. */
    public void toBf16(MemorySegment in, MemorySegment out, long n) {
        cuda.call("brm_float_to_bf16", () -> (int) toBf16.invokeExact(in, out, n));
    }

    /** out [n] FP16 = in [n] FP32, rounded to nearest even. */
    public void toFp16(MemorySegment in, MemorySegment out, long n) {
        cuda.call("brm_float_to_fp16", () -> (int) toFp16.invokeExact(in, out, n));
    }
}
