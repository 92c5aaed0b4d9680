package brm.bindings.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.function.IntUnaryOperator;
import java.util.function.UnaryOperator;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * cuda/gemm.cu through the bindings, on a GPU when present, else on the emulator: the 16-bit conversions round
 * to nearest even bit for bit, and the FP32 and tensor-core products, for every transpose, leading dimensions
 * past the matrix (aligned or not), alpha, beta (0 with NaN in c) and bias, equal a double loop over the
 * (rounded) inputs up to FP32 accumulation, leaving c's padding alone. (The backend's tensors have no padding
 * and its 16-bit products no transposed A; these are the kernels' own.)
 */
class GemmKernelsTest {
    @Test
    void conversionsRoundToNearestEven() {
        Cuda cuda = TestCuda.get();
        GemmKernels gemm = new GemmKernels(cuda);
        Random random = new Random();
        int n = random.nextInt(1000, 3000);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(-4, 5)));
        values[0] = Float.intBitsToFloat(0x3f808000);  // a BF16 tie, to even (down)
        values[1] = Float.intBitsToFloat(0x3f818000);  // a BF16 tie, to even (up)
        values[2] = 1 + 0x1p-11f;                      // an FP16 tie
        try (Arena arena = Arena.ofConfined(); DeviceBuffer in = upload(cuda, arena, values); DeviceBuffer out = cuda.allocate(2L * n)) {
            MemorySegment host = arena.allocate(2L * n);
            gemm.toBf16(in.address(), out.address(), n);
            cuda.copyToHost(host, out.address(), 2L * n);
            for (int i = 0; i < n; i++) assertEquals(Float.floatToRawIntBits(bf16(values[i])) >>> 16, host.getAtIndex(JAVA_SHORT, i) & 0xffff, "bf16 of " + values[i]);
            gemm.toFp16(in.address(), out.address(), n);
            cuda.copyToHost(host, out.address(), 2L * n);
            for (int i = 0; i < n; i++) assertEquals(Float.floatToFloat16(values[i]), host.getAtIndex(JAVA_SHORT, i), "fp16 of " + values[i]);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"fp32", "bf16", "fp16"})
    void productsMatchADoubleLoopForEveryLayoutAndLeadingDimension(String type) {
        Cuda cuda = TestCuda.get();
        GemmKernels gemm = new GemmKernels(cuda);
        UnaryOperator<Float> round = switch (type) {
            case "bf16" -> GemmKernelsTest::bf16;
            case "fp16" -> GemmKernelsTest::fp16;
            default -> v -> v;
        };
        int vector = type.equals("fp32") ? 4 : 8;  // values per 16-byte load
        Random random = new Random();
        int[][] sizes = {
                {1, 1, 1},
                {random.nextInt(2, 100), random.nextInt(2, 100), 8 * random.nextInt(1, 12) + random.nextInt(1, 8)},  // rows not 16-byte aligned
                {40, 136, 72},  // whole 16-byte loads where the leading dimensions allow, edges inside a k step and past n = 128
                {135, 71, 39},  // past m = 128; 3 values past the last whole vector of each row
                {random.nextInt(1, 30), random.nextInt(1, 30), 0},
        };
        int call = 0;
        try (Arena arena = Arena.ofConfined()) {
            for (int[] size : sizes)
                for (int padding = 0; padding < 3; padding++)
                    for (int trans = 0; trans < 4; trans++) {
                        boolean transA = (trans & 1) != 0, transB = (trans & 2) != 0;
                        int m = size[0], n = size[1], k = size[2], variant = call++;
                        // rows padded past the matrix: not, to the next whole vector (aligned rows, a partial last
                        // vector), or by 1 (unaligned rows)
                        IntUnaryOperator padded = switch (padding) {
                            case 0 -> cols -> cols;
                            case 1 -> cols -> (cols / vector + 1) * vector;
                            default -> cols -> cols + 1;
                        };
                        int lda = padded.applyAsInt(transA ? m : k), ldb = padded.applyAsInt(transB ? k : n), ldc = padded.applyAsInt(n);
                        float alpha = (float) random.nextGaussian(), beta = variant % 2 == 0 ? 0f : (float) random.nextGaussian();
                        // NaN in a's and b's padding: a tile that reads past a row's end shows it (NaN·0 is NaN)
                        float[] a = padded(random, transA ? k : m, transA ? m : k, lda), b = padded(random, transB ? n : k, transB ? k : n, ldb);
                        float[] bias = variant % 4 == 0 ? null : gaussian(random, n);
                        float[] c = new float[m * ldc];
                        for (int i = 0; i < c.length; i++) c[i] = beta == 0 && i % ldc < n ? Float.NaN : (float) random.nextGaussian();
                        double[] expected = new double[c.length];
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < ldc; j++) {
                                if (j >= n) {
                                    expected[i * ldc + j] = c[i * ldc + j];  // padding stays as it was
                                    continue;
                                }
                                double s = 0;
                                for (int l = 0; l < k; l++)
                                    s += (double) round.apply(a[transA ? l * lda + i : i * lda + l]) * round.apply(b[transB ? j * ldb + l : l * ldb + j]);
                                expected[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]) + (bias == null ? 0 : bias[j]);
                            }
                        try (DeviceBuffer da = upload(cuda, arena, a); DeviceBuffer db = upload(cuda, arena, b);
                             DeviceBuffer dc = upload(cuda, arena, c); DeviceBuffer dbias = bias == null ? null : upload(cuda, arena, bias);
                             DeviceBuffer ha = cuda.allocate(2L * a.length); DeviceBuffer hb = cuda.allocate(2L * b.length)) {
                            MemorySegment biasAddress = dbias == null ? MemorySegment.NULL : dbias.address();
                            switch (type) {
                                case "fp32" -> gemm.sgemm(transA, transB, m, n, k, alpha, da.address(), lda, db.address(), ldb, beta, dc.address(), ldc, biasAddress);
                                case "bf16" -> {
                                    gemm.toBf16(da.address(), ha.address(), a.length);
                                    gemm.toBf16(db.address(), hb.address(), b.length);
                                    gemm.gemmBf16(transA, transB, m, n, k, alpha, ha.address(), lda, hb.address(), ldb, beta, dc.address(), ldc, biasAddress);
                                }
                                default -> {
                                    gemm.toFp16(da.address(), ha.address(), a.length);
                                    gemm.toFp16(db.address(), hb.address(), b.length);
                                    gemm.gemmFp16(transA, transB, m, n, k, alpha, ha.address(), lda, hb.address(), ldb, beta, dc.address(), ldc, biasAddress);
                                }
                            }
                            MemorySegment host = arena.allocate(4L * Math.max(c.length, 1));
                            cuda.copyToHost(host, dc.address(), 4L * c.length);
                            String what = type + " [" + m + ", " + n + ", " + k + "] transA " + transA + " transB " + transB + " lda " + lda + " ldb " + ldb + " ldc " + ldc
                                    + " beta " + beta + (bias == null ? "" : " bias");
                            assertClose(what, expected, host.toArray(JAVA_FLOAT));
                        }
                    }
        }
    }

    private static DeviceBuffer upload(Cuda cuda, Arena arena, float[] values) {
        DeviceBuffer buffer = cuda.allocate(4L * values.length);
        MemorySegment host = arena.allocate(4L * Math.max(values.length, 1));
        MemorySegment.copy(values, 0, host, JAVA_FLOAT, 0, values.length);
        cuda.copyToDevice(buffer.address(), host, 4L * values.length);
        return buffer;
    }

    /** [rows, cols] of Gaussian values in rows of ld, NaN past cols. */
    private static float[] padded(Random random, int rows, int cols, int ld) {
        float[] v = new float[rows * ld];
        for (int i = 0; i < v.length; i++) v[i] = i % ld < cols ? (float) random.nextGaussian() : Float.NaN;
        return v;
    }

    private static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian();
        return v;
    }

    private static float bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        return Float.intBitsToFloat((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000);
    }

    private static float fp16(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    /** FP32 accumulation of up to ~150 exact products: within 1e-4 of the double sum, relative to 1 + |expected|. */
    private static void assertClose(String what, double[] expected, float[] got) {
        for (int i = 0; i < expected.length; i++)
            if (!(Math.abs(got[i] - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i]))))
                fail(what + ": element " + i + " is " + got[i] + ", expected " + expected[i]);
    }
}
