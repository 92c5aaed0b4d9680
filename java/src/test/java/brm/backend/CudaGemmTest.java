package brm.backend;

import brm.backend.Backend.Lora;
import brm.backend.Backend.Weight;
import brm.backend.CudaBackend.Precision;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;

import static brm.backend.CudaParity.assertClose;
import static brm.backend.CudaParity.gaussian;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The CUDA backend's matrix products (cuda/gemm.cu) against the FP64 reference backend: matmul for every
 * transpose, alpha and beta, on sizes that hit both tile shapes of the FP32 kernel and its edges; linear and
 * its backward with and without bias and LoRA, every gradient; segmentOuter; and the BF16/FP16 paths, which
 * must equal the reference on inputs rounded to 16 bits (W and the activation of the frozen product only).
 */
class CudaGemmTest {
    /** FP32 products of up to ~150 terms against FP64, relative to 1 + |expected|. */
    private static final double FP32 = 1e-4;
    /** 16-bit products against the reference on the same rounded inputs: only the FP32 accumulation differs. */
    private static final double ROUNDED = 3e-4;

    @Test
    void matmulMatchesTheReferenceForEveryTransposeAlphaAndBeta() {
        Random random = new Random();
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            // "large" sizes give every multiprocessor a 128×128 tile (the emulator reports 2), the others take 64×64 tiles
            int large = be.cuda().emulator() ? 150 : 1600, aligned = be.cuda().emulator() ? 132 : 1600;
            int[][] sizes = {
                    {1, 1, 1},
                    {random.nextInt(2, 100), random.nextInt(2, 100), random.nextInt(2, 100)},
                    {64, 128, 32},  // float4 loads and stores throughout
                    {random.nextInt(129, large + 1), random.nextInt(129, large + 1), random.nextInt(1, 150)},
                    {aligned, aligned + 4, 140},
                    {random.nextInt(1, 40), random.nextInt(1, 40), 0},  // c = beta·c
            };
            int call = 0;
            for (int[] size : sizes)
                for (boolean transA : new boolean[] {false, true})
                    for (boolean transB : new boolean[] {false, true}) {
                        int m = size[0], n = size[1], k = size[2];
                        float alpha = (float) random.nextGaussian(), beta = switch (call++ % 3) {
                            case 0 -> 0f;  // c holds NaN: it must not be read
                            case 1 -> 1f;
                            default -> (float) random.nextGaussian();
                        };
                        float[] a = gaussian(random, m * k), b = gaussian(random, k * n);
                        float[] c = beta == 0 ? nans(m * n) : gaussian(random, m * n);
                        Tensor ra = ref.upload(a, transA ? k : m, transA ? m : k), rb = ref.upload(b, transB ? n : k, transB ? k : n);
                        Tensor rc = ref.upload(c, m, n);
                        ref.matmul(ra, transA, rb, transB, alpha, beta, rc);
                        Tensor ga = be.upload(a, transA ? k : m, transA ? m : k), gb = be.upload(b, transB ? n : k, transB ? k : n);
                        Tensor gc = be.upload(c, m, n);
                        be.matmul(ga, transA, gb, transB, alpha, beta, gc);
                        assertClose("matmul " + Arrays.toString(size) + " transA " + transA + " transB " + transB + " beta " + beta,
                                ref.download(rc), be.download(gc), FP32);
                    }
            assertThrows(IllegalArgumentException.class, () -> be.matmul(be.allocate(2, 3), false, be.allocate(2, 3), false, 1f, 0f, be.allocate(2, 3)));
        }
    }

    @Test
    void linearMatchesTheReferenceWithAndWithoutBiasAndLora() {
        Random random = new Random();
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            for (int variant = 0; variant < 8; variant++) {
                boolean aligned = (variant & 1) != 0, withBias = (variant & 2) != 0, withLora = (variant & 4) != 0;
                Layer layer = Layer.random(random, aligned, withBias, withLora);
                Tensor ry = ref.allocate(layer.rows, layer.out);
                ref.linear(layer.x(ref), layer.weight(ref, false, UnaryOperator.identity()), layer.lora(ref), ry);
                Tensor gy = be.upload(nans(layer.rows * layer.out), layer.rows, layer.out);  // overwritten
                be.linear(layer.x(be), layer.weight(be, false, UnaryOperator.identity()), layer.lora(be), gy);
                assertClose("linear " + layer + " bias " + withBias + " LoRA " + withLora, ref.download(ry), be.download(gy), FP32);
            }
        }
    }

    @Test
    void linearBackwardMatchesTheReferenceForEveryGradient() {
        Random random = new Random();
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            for (int asked = 0; asked < 18; asked++) {
                // asked % 9 in 0..7: LoRA with each subset of dx, dA, dB; 8: no LoRA, dx only; once of any size, once aligned
                int which = asked % 9;
                boolean withLora = which < 8, wantDx = which == 8 || (which & 1) != 0, wantDa = (which & 2) != 0, wantDb = (which & 4) != 0;
                Layer layer = Layer.random(random, asked >= 9, true, withLora);
                float[] dy = gaussian(random, layer.rows * layer.out);
                Gradients expected = Gradients.random(random, layer, wantDx, wantDa, wantDb), got = expected.copy();
                expected.accumulate(ref, layer, dy, UnaryOperator.identity(), UnaryOperator.identity());
                got.accumulate(be, layer, dy, UnaryOperator.identity(), UnaryOperator.identity());
                expected.assertClose(got, "linearBackward " + layer + " dx " + wantDx + " dA " + wantDa + " dB " + wantDb, FP32);
            }
        }
    }

    @Test
    void linearBackwardRejectsGradientsItCannotGive() {
        try (CudaBackend be = CudaParity.backend()) {
            Weight frozen = be.weight(new float[6], null, 2, 3, false);
            Tensor x = be.allocate(4, 3), dy = be.allocate(4, 2), lora = be.allocate(1, 3);
            assertThrows(IllegalArgumentException.class, () -> be.linearBackward(x, frozen, null, dy, be.allocate(4, 3), null, null));
            assertThrows(IllegalArgumentException.class, () -> be.linearBackward(x, frozen, null, dy, null, lora, null));
            assertThrows(IllegalArgumentException.class, () -> be.linear(x, frozen, null, be.allocate(4, 3)));
        }
    }

    @Test
    void segmentOuterMatchesTheReferenceForVariedLengths() {
        Random random = new Random();
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            for (int seqs : new int[] {1, random.nextInt(2, 7)}) {
                int[][] sequences = new int[seqs][];
                for (int s = 0; s < seqs; s++) sequences[s] = new int[s == 0 ? 1 : random.nextInt(1, 60)];
                Packing p = Packing.of(List.of(sequences));
                int m = random.nextInt(1, 151), n = random.nextInt(1, 151), tokens = p.tokens();
                float alpha = (float) random.nextGaussian();
                float[] a = gaussian(random, tokens * m), b = gaussian(random, tokens * n);
                Tensor rout = ref.allocate(seqs * m, n);
                ref.segmentOuter(p, ref.upload(a, tokens, m), ref.upload(b, tokens, n), alpha, rout);
                Tensor gout = be.upload(nans(seqs * m * n), seqs * m, n);  // overwritten
                be.segmentOuter(p, be.upload(a, tokens, m), be.upload(b, tokens, n), alpha, gout);
                assertClose("segmentOuter " + Arrays.toString(p.starts()) + " m " + m + " n " + n, ref.download(rout), be.download(gout), FP32);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = Precision.class, names = {"BF16", "FP16"})
    void sixteenBitLinearRoundsOnlyTheFrozenProductsInputs(Precision precision) {
        Random random = new Random();
        UnaryOperator<float[]> round = precision == Precision.BF16 ? CudaGemmTest::bf16 : CudaGemmTest::fp16;
        try (CudaBackend fp32 = CudaParity.backend(); CudaBackend be = new CudaBackend(fp32.cuda(), precision);
             ReferenceBackend ref = new ReferenceBackend()) {
            for (int variant = 0; variant < 4; variant++) {
                boolean withLora = (variant & 1) != 0;
                Layer layer = Layer.random(random, (variant & 2) != 0, true, withLora);
                // expected: bf16(x)·bf16(W)ᵀ + b, plus the LoRA term in full precision (a zero W carries it)
                Tensor main = ref.allocate(layer.rows, layer.out), loraTerm = ref.allocate(layer.rows, layer.out);
                ref.linear(ref.upload(round.apply(layer.x), layer.rows, layer.in), layer.weight(ref, false, round), null, main);
                if (withLora) ref.linear(layer.x(ref), layer.zeroWeight(ref), layer.lora(ref), loraTerm);
                float[] expected = sum(ref.download(main), ref.download(loraTerm));
                Tensor y = be.upload(nans(layer.rows * layer.out), layer.rows, layer.out);
                be.linear(layer.x(be), layer.weight(be, false, UnaryOperator.identity()), layer.lora(be), y);
                float[] got = be.download(y);
                assertClose(precision + " linear " + layer + " LoRA " + withLora, expected, got, ROUNDED);
                // and within 16-bit rounding of the unrounded product: ~√in · 2^-8 (BF16) or 2^-11 (FP16) absolute, 5 sigmas
                Tensor exact = ref.allocate(layer.rows, layer.out);
                ref.linear(layer.x(ref), layer.weight(ref, false, UnaryOperator.identity()), layer.lora(ref), exact);
                assertClose(precision + " linear " + layer + " against FP64", ref.download(exact), got, precision == Precision.BF16 ? 0.25 : 0.05);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = Precision.class, names = {"BF16", "FP16"})
    void sixteenBitBackwardRoundsOnlyDyAndW(Precision precision) {
        Random random = new Random();
        UnaryOperator<float[]> round = precision == Precision.BF16 ? CudaGemmTest::bf16 : CudaGemmTest::fp16;
        try (CudaBackend fp32 = CudaParity.backend(); CudaBackend be = new CudaBackend(fp32.cuda(), precision);
             ReferenceBackend ref = new ReferenceBackend()) {
            for (boolean aligned : new boolean[] {false, true}) {
                Layer layer = Layer.random(random, aligned, false, true);
                float[] dy = gaussian(random, layer.rows * layer.out);
                Gradients expected = Gradients.random(random, layer, true, true, true), got = expected.copy();
                // expected: dx += bf16(dy)·bf16(W) (no LoRA), then the LoRA terms of every gradient in full precision (zero W)
                expected.accumulate(ref, layer.withoutLora(), dy, round, round);
                expected.accumulate(ref, layer.withZeroWeight(), dy, UnaryOperator.identity(), UnaryOperator.identity());
                got.accumulate(be, layer, dy, UnaryOperator.identity(), UnaryOperator.identity());
                expected.assertClose(got, precision + " linearBackward " + layer, ROUNDED);
            }
        }
    }

    /**
     * A linear layer's random values: x [rows, in], W [out, in], bias [out] or null, LoRA A [r, in], B [out, r]
     * or none; {@code zeroW} replaces W by zeros (to get the LoRA terms alone).
     */
    private record Layer(int rows, int in, int out, int r, float[] x, float[] w, float[] bias, float[] a, float[] b, float scale, boolean zeroW) {
        /** aligned: in, out and r multiples of 8 (the kernels' vector loads and stores), else any size up to 150. */
        static Layer random(Random random, boolean aligned, boolean withBias, boolean withLora) {
            int rows = random.nextInt(1, 100), r = aligned ? 8 * random.nextInt(1, 3) : random.nextInt(1, 17);
            int in = aligned ? 8 * random.nextInt(1, 19) : random.nextInt(1, 151), out = aligned ? 8 * random.nextInt(1, 19) : random.nextInt(1, 151);
            return new Layer(rows, in, out, r, gaussian(random, rows * in), gaussian(random, out * in), withBias ? gaussian(random, out) : null,
                    withLora ? gaussian(random, r * in) : null, withLora ? gaussian(random, out * r) : null, (float) random.nextGaussian(), false);
        }

        Layer withoutLora() {
            return new Layer(rows, in, out, r, x, w, bias, null, null, scale, zeroW);
        }

        Layer withZeroWeight() {
            return new Layer(rows, in, out, r, x, w, bias, a, b, scale, true);
        }

        Tensor x(Backend be) {
            return be.upload(x, rows, in);
        }

        Weight weight(Backend be, boolean backward, UnaryOperator<float[]> round) {
            return be.weight(zeroW ? new float[out * in] : round.apply(w), bias, out, in, backward);
        }

        Weight zeroWeight(Backend be) {
            return be.weight(new float[out * in], null, out, in, false);
        }

        Lora lora(Backend be) {
            return a == null ? null : new Lora(be.upload(a, r, in), be.upload(b, out, r), scale);
        }

        @Override
        public String toString() {
            return "[" + rows + ", " + in + "] -> " + out + (a == null ? "" : " r " + r);
        }
    }

    /** linearBackward's gradients before (random, to check they accumulate) and after; null where not asked. */
    private record Gradients(float[] dx, float[] dA, float[] dB) {
        static Gradients random(Random random, Layer layer, boolean dx, boolean dA, boolean dB) {
            return new Gradients(dx ? gaussian(random, layer.rows * layer.in) : null, dA ? gaussian(random, layer.r * layer.in) : null,
                    dB ? gaussian(random, layer.out * layer.r) : null);
        }

        Gradients copy() {
            return new Gradients(dx == null ? null : dx.clone(), dA == null ? null : dA.clone(), dB == null ? null : dB.clone());
        }

        /** These gradients += the layer's backward on {@code be} for dy; roundDy, roundW round the frozen product's inputs. */
        void accumulate(Backend be, Layer layer, float[] dy, UnaryOperator<float[]> roundDy, UnaryOperator<float[]> roundW) {
            Lora lora = layer.lora(be);
            Tensor tdx = dx == null ? null : be.upload(dx, layer.rows, layer.in);
            Tensor tdA = dA == null || lora == null ? null : be.upload(dA, layer.r, layer.in);
            Tensor tdB = dB == null || lora == null ? null : be.upload(dB, layer.out, layer.r);
            be.linearBackward(layer.x(be), layer.weight(be, true, roundW), lora, be.upload(roundDy.apply(dy), layer.rows, layer.out), tdx, tdA, tdB);
            if (tdx != null) be.download(tdx, dx);
            if (tdA != null) be.download(tdA, dA);
            if (tdB != null) be.download(tdB, dB);
        }

        void assertClose(Gradients got, String what, double tolerance) {
            if (dx != null) CudaParity.assertClose(what + " dx", dx, got.dx, tolerance);
            if (dA != null) CudaParity.assertClose(what + " dA", dA, got.dA, tolerance);
            if (dB != null) CudaParity.assertClose(what + " dB", dB, got.dB, tolerance);
        }
    }

    private static float[] nans(int n) {
        float[] v = new float[n];
        Arrays.fill(v, Float.NaN);
        return v;
    }

    private static float[] sum(float[] a, float[] b) {
        float[] s = new float[a.length];
        for (int i = 0; i < a.length; i++) s[i] = a[i] + b[i];
        return s;
    }

    /** Rounded to BF16 (to nearest even), as a float. */
    static float[] bf16(float[] v) {
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            int bits = Float.floatToRawIntBits(v[i]);
            r[i] = Float.intBitsToFloat((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000);
        }
        return r;
    }

    /** Rounded to FP16 (to nearest even), as a float. */
    static float[] fp16(float[] v) {
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) r[i] = Float.float16ToFloat(Float.floatToFloat16(v[i]));
        return r;
    }
}
