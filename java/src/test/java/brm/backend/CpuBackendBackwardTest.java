package brm.backend;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The backward ops of {@link CpuBackend} against the FP64 {@link ReferenceBackend} on the same random
 * inputs. Each case is one function of a backend that uploads its inputs, runs the op and downloads
 * the gradients; it runs on the reference, then twice on fresh CPU backends (1 or 2 threads), which
 * must agree with the reference to |cpu - ref| ≤ 1e-5·(|ref| + rms(ref)) per element and with each
 * other bit for bit. Accumulating outputs start from random values (so "+=" is checked), overwritten
 * ones from NaN on the CPU (so every element must be written). Sizes are odd (37, 13, head dim 12) so
 * vector tails run; sequences of 1, 5, 19 and 200 tokens, the last spanning several query tiles.
 */
class CpuBackendBackwardTest {
    private final Random random = new Random(20240611);
    private static final double TOLERANCE = 1e-5;
    private static final Packing PACKING = Packing.of(List.of(new int[1], new int[5], new int[19], new int[200]));

    /** One op on a backend: uploads its inputs, runs, returns the downloaded outputs. */
    @FunctionalInterface
    private interface Case {
        float[][] run(Backend be);
    }

    private float[] randoms(int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (random.nextGaussian() * scale);
        return x;
    }

    /** A tensor holding values, or NaN on the CPU backend (for outputs the op must overwrite). */
    private static Tensor overwritten(Backend be, float[] values, int rows, int cols) {
        if (be instanceof ReferenceBackend) return be.upload(values, rows, cols);
        float[] nan = new float[values.length];
        Arrays.fill(nan, Float.NaN);
        return be.upload(nan, rows, cols);
    }

    private static void check(String what, int threads, Case op) {
        float[][] expected;
        try (Backend ref = new ReferenceBackend()) {
            expected = op.run(ref);
        }
        float[][] first, second;
        try (Backend be = new CpuBackend(threads)) {
            first = op.run(be);
        }
        try (Backend be = new CpuBackend(threads)) {
            second = op.run(be);
        }
        for (int o = 0; o < expected.length; o++) {
            String name = what + " output " + o + " (threads " + threads + ")";
            close(name, expected[o], first[o]);
            for (int i = 0; i < first[o].length; i++)
                if (Float.floatToRawIntBits(first[o][i]) != Float.floatToRawIntBits(second[o][i]))
                    fail(name + ": a second run differs at " + i + ": " + first[o][i] + " vs " + second[o][i]);
        }
    }

    private static void close(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": length");
        double squares = 0;
        for (float e : expected) squares += (double) e * e;
        double rms = Math.sqrt(squares / expected.length);
        assertTrue(rms > 0, what + ": the reference is all zeros");
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(actual[i] - (double) expected[i]) / (Math.abs(expected[i]) + rms);
            if (!(err <= TOLERANCE)) fail(what + ": element " + i + " = " + actual[i] + ", expected " + expected[i]);
        }
    }

    /** Linear backward with and without LoRA; the larger shape takes the blocked GEMM paths for dA and dB. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void linearBackward(int threads) {
        for (int[] shape : new int[][] {{9, 37, 13, 3}, {301, 77, 45, 5}}) {
            int rows = shape[0], in = shape[1], out = shape[2], r = shape[3];
            float scale = 0.7f;
            float[] x = randoms(rows * in, 1), w = randoms(out * in, 0.3), b = randoms(out, 1), dy = randoms(rows * out, 1);
            float[] a = randoms(r * in, 0.3), bl = randoms(out * r, 0.3);
            float[] dx0 = randoms(rows * in, 1), dA0 = randoms(r * in, 1), dB0 = randoms(out * r, 1);
            String what = "linear " + Arrays.toString(shape);
            check(what + " + lora", threads, be -> {
                Tensor dx = be.upload(dx0, rows, in), dA = be.upload(dA0, r, in), dB = be.upload(dB0, out, r);
                be.linearBackward(be.upload(x, rows, in), be.weight(w, b, out, in, true),
                        new Backend.Lora(be.upload(a, r, in), be.upload(bl, out, r), scale), be.upload(dy, rows, out), dx, dA, dB);
                return new float[][] {be.download(dx), be.download(dA), be.download(dB)};
            });
            check(what + " + lora, dA only", threads, be -> {
                Tensor dA = be.upload(dA0, r, in);
                be.linearBackward(be.upload(x, rows, in), be.weight(w, b, out, in, false),
                        new Backend.Lora(be.upload(a, r, in), be.upload(bl, out, r), scale), be.upload(dy, rows, out), null, dA, null);
                return new float[][] {be.download(dA)};
            });
            check(what, threads, be -> {
                Tensor dx = be.upload(dx0, rows, in);
                be.linearBackward(be.upload(x, rows, in), be.weight(w, null, out, in, true), null, be.upload(dy, rows, out), dx, null, null);
                return new float[][] {be.download(dx)};
            });
        }
    }

    @Test
    void linearBackwardNeedsAWeightPreparedForIt() {
        try (Backend be = new CpuBackend(1)) {
            Backend.Weight w = be.weight(randoms(6, 1), null, 2, 3, false);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> be.linearBackward(be.allocate(4, 3), w, null, be.allocate(4, 2), be.allocate(4, 3), null, null));
            assertTrue(e.getMessage().contains("backward"), e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void normsBackward(int threads) {
        int rows = 11, n = 37;
        float[] x = randoms(rows * n, 2), dy = randoms(rows * n, 1), w = randoms(n, 1), dx0 = randoms(rows * n, 1);
        for (int i = 0; i < x.length; i++) x[i] += 3;
        check("layerNorm", threads, be -> {
            Tensor dx = be.upload(dx0, rows, n);
            be.layerNormBackward(be.upload(x, rows, n), be.upload(w, 1, n), 1e-5f, be.upload(dy, rows, n), dx);
            return new float[][] {be.download(dx)};
        });
        check("rmsNorm", threads, be -> {
            Tensor dx = be.upload(dx0, rows, n);
            be.rmsNormBackward(be.upload(x, rows, n), be.upload(w, 1, n), 1e-6f, be.upload(dy, rows, n), dx);
            return new float[][] {be.download(dx)};
        });
    }

    /** GELU over -7..5 (both tails of the erfc branch), into a fresh tensor and in place into dy. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void geluBackward(int threads) {
        int rows = 7, n = 43;
        float[] x = new float[rows * n], dy = randoms(rows * n, 1);
        for (int i = 0; i < x.length; i++) x[i] = (float) (-7 + 12.0 * random.nextDouble());
        check("gelu", threads, be -> {
            Tensor dx = overwritten(be, dy, rows, n);
            be.geluBackward(be.upload(x, rows, n), be.upload(dy, rows, n), dx);
            return new float[][] {be.download(dx)};
        });
        check("gelu in place", threads, be -> {
            Tensor d = be.upload(dy, rows, n);
            be.geluBackward(be.upload(x, rows, n), d, d);
            return new float[][] {be.download(d)};
        });
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void siluMulBackward(int threads) {
        int rows = 5, n = 37;
        float[] g = randoms(rows * n, 3), u = randoms(rows * n, 1), dy = randoms(rows * n, 1);
        check("siluMul", threads, be -> {
            Tensor dGate = overwritten(be, dy, rows, n), dUp = overwritten(be, dy, rows, n);
            be.siluMulBackward(be.upload(g, rows, n), be.upload(u, rows, n), be.upload(dy, rows, n), dGate, dUp);
            return new float[][] {be.download(dGate), be.download(dUp)};
        });
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void poolBackward(int threads) {
        int cols = 37, rows = PACKING.tokens();
        float[] dPooled = randoms(PACKING.seqs() * cols, 1), garbage = randoms(rows * cols, 1);
        for (Pooling how : Pooling.values())
            check("pool " + how, threads, be -> {
                Tensor dx = overwritten(be, garbage, rows, cols);
                be.poolBackward(PACKING, how, be.upload(dPooled, PACKING.seqs(), cols), dx);
                return new float[][] {be.download(dx)};
            });
    }

    /**
     * GQA (4 query heads, 2 key/value heads), head dim 12: q separate, k and v interleaved in one
     * tensor and so their gradients, which are views of one tensor too; causal and not.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void attentionBackwardGroupedQueries(int threads) {
        int heads = 4, kvHeads = 2, dim = 12, rows = PACKING.tokens();
        float scale = (float) (1 / Math.sqrt(dim));
        float[] q = randoms(rows * heads * dim, 1.5), kv = randoms(rows * 2 * kvHeads * dim, 1.5), dOut = randoms(rows * heads * dim, 1);
        for (boolean causal : new boolean[] {true, false})
            check("attention GQA causal=" + causal, threads, be -> {
                Tensor qt = be.upload(q, rows, heads * dim), kvt = be.upload(kv, rows, 2 * kvHeads * dim);
                Tensor dq = overwritten(be, q, rows, heads * dim), dkv = overwritten(be, kv, rows, 2 * kvHeads * dim);
                be.attentionBackward(PACKING, Heads.packed(qt, heads, dim), new Heads(kvt, 0, 2 * dim, kvHeads, dim),
                        new Heads(kvt, dim, 2 * dim, kvHeads, dim), causal, scale, be.upload(dOut, rows, heads * dim),
                        Heads.packed(dq, heads, dim), new Heads(dkv, 0, 2 * dim, kvHeads, dim), new Heads(dkv, dim, 2 * dim, kvHeads, dim));
                return new float[][] {be.download(dq), be.download(dkv)};
            });
    }

    /** GPT-NeoX's fused layout: q, k, v interleaved per head (stride 3D), gradients into one tensor of the same layout. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void attentionBackwardFusedLayout(int threads) {
        int heads = 3, dim = 12, cols = heads * 3 * dim, rows = PACKING.tokens();
        float scale = (float) (1 / Math.sqrt(dim));
        float[] qkv = randoms(rows * cols, 1.5), dOut = randoms(rows * heads * dim, 1);
        check("attention fused", threads, be -> {
            Tensor t = be.upload(qkv, rows, cols), d = overwritten(be, qkv, rows, cols);
            List<Heads> views = new ArrayList<>();
            for (Tensor x : new Tensor[] {t, d})
                for (int part = 0; part < 3; part++) views.add(new Heads(x, part * dim, 3 * dim, heads, dim));
            be.attentionBackward(PACKING, views.get(0), views.get(1), views.get(2), true, scale, be.upload(dOut, rows, heads * dim),
                    views.get(3), views.get(4), views.get(5));
            return new float[][] {be.download(d)};
        });
    }
}
