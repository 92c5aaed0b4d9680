package brm.backend;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reference backend's backward ops against central finite differences in float64, its erf
 * against known values, and its forward ops against the FP32 CPU backend.
 *
 * Gradient check: for y = f(x) and a random upstream dy, L(x) = ⟨dy, f(x)⟩, so ∂L/∂x is what the
 * backward op returns for dy. Each element of x is moved by ±h in the backend's double storage,
 * numeric = (L(x+h) - L(x-h)) / 2h, and the check requires max|analytic - numeric| / max|numeric|
 * ≤ 1e-6. With h = 1e-6·max(1, |x|) the truncation (~h²·L''') and rounding (~1e-16·|L|/h) errors
 * are near 1e-10, while a wrong term or sign gives errors of order 1 (checked below).
 * Gradient buffers start as noise: "+=" ops must add to it, "=" ops overwrite it.
 */
class ReferenceBackendTest {
    private static final double H = 1e-6, TOLERANCE = 1e-6;
    private static final Packing PACKING = Packing.of(List.of(new int[1], new int[5], new int[19]));
    private final Random random = new Random(20240611);
    private final ReferenceBackend be = new ReferenceBackend();

    private double[] gaussians(int n, double scale) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = random.nextGaussian() * scale;
        return x;
    }

    private Tensor randn(int rows, int cols, double scale) {
        return be.uploadDouble(gaussians(rows * cols, scale), rows, cols);
    }

    private float[] floats(int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (random.nextGaussian() * scale);
        return x;
    }

    private double[] values(Tensor t) {
        return Arrays.copyOf(be.data(t), t.rows() * t.cols());
    }

    private double dot(Tensor dy, Tensor y) {
        double[] a = be.data(dy), b = be.data(y);
        double s = 0;
        for (int i = 0; i < y.rows() * y.cols(); i++) s += a[i] * b[i];
        return s;
    }

    private static double[] minus(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i] - b[i];
        return d;
    }

    /** max|analytic - numeric| / max|numeric| over every element of x, numeric by central differences of loss. */
    private double gradientError(Tensor x, double[] analytic, DoubleSupplier loss) {
        double[] xs = be.data(x);
        double worst = 0, largest = 0;
        for (int i = 0; i < x.rows() * x.cols(); i++) {
            double saved = xs[i], h = H * Math.max(1, Math.abs(saved)), up = saved + h, down = saved - h;
            xs[i] = up;
            double lUp = loss.getAsDouble();
            xs[i] = down;
            double lDown = loss.getAsDouble();
            xs[i] = saved;
            double numeric = (lUp - lDown) / (up - down);
            worst = Math.max(worst, Math.abs(analytic[i] - numeric));
            largest = Math.max(largest, Math.abs(numeric));
        }
        assertTrue(largest > 0, "the loss does not depend on the input");
        return worst / largest;
    }

    private void assertGradient(String what, Tensor x, double[] analytic, DoubleSupplier loss) {
        double error = gradientError(x, analytic, loss);
        assertTrue(error <= TOLERANCE, what + ": gradient relative error " + error);
    }

    @Test
    void erfMatchesKnownValues() {
        double[][] known = {{0.1, 0.1124629160182849}, {0.5, 0.5204998778130465}, {1, 0.8427007929497149},
                {2, 0.9953222650189527}, {-3, -0.9999779095030014}, {1e-10, 1.1283791670955126e-10}};
        for (double[] k : known)
            assertEquals(k[1], ReferenceBackend.erf(k[0]), 1e-15 * Math.abs(k[1]), "erf(" + k[0] + ")");
        double[][] complement = {{0.5, 0.4795001221869534623}, {3, 2.2090496998585441373e-5}, {4, 1.5417257900280018852e-8},
                {5, 1.5374597944280348502e-12}, {5.3, 6.6130818503408109285e-14}, {10, 2.0884875837625447570e-45},
                {20.1, 9.735977140428878159e-178}, {26.4, 4.4017768588035427204e-305}, {-1, 1.8427007929497148693}};
        for (double[] k : complement)
            assertEquals(k[1], ReferenceBackend.erfc(k[0]), 1e-15 * Math.abs(k[1]), "erfc(" + k[0] + ")");
        assertEquals(0, ReferenceBackend.erfc(30));
        assertEquals(2, ReferenceBackend.erfc(-30));
        assertTrue(Double.isNaN(ReferenceBackend.erf(Double.NaN)) && Double.isNaN(ReferenceBackend.erfc(Double.NaN)));
    }

    /**
     * erf(x) = 2/√π·e^(-x²)·Σ_n 2^n·x^(2n+1)/(1·3···(2n+1)), a series of positive terms (no cancellation),
     * across all three intervals of Cody's approximation.
     */
    @Test
    void erfMatchesPositiveSeries() {
        for (double x = -6; x <= 6; x += 0.0137) {
            double term = Math.abs(x), sum = term;
            for (int n = 1; term > 1e-18 * sum; n++) sum += term *= 2 * x * x / (2 * n + 1);
            double series = Math.signum(x) * 2 / Math.sqrt(Math.PI) * Math.exp(-x * x) * sum;
            assertEquals(series, ReferenceBackend.erf(x), 2e-14 * Math.abs(series), "erf(" + x + ")");
            assertEquals(1 - series, ReferenceBackend.erfc(x), 2e-14, "erfc(" + x + ")");
        }
    }

    private Backend.Lora lora(int out, int in, int r) {
        return new Backend.Lora(randn(r, in, 0.3), randn(out, r, 0.3), 0.7f);
    }

    @Test
    void linearBackwardWithLora() {
        int rows = 9, in = 37, out = 13, r = 3;
        Tensor x = randn(rows, in, 1), dy = randn(rows, out, 1), y = be.allocate(rows, out);
        Backend.Weight w = be.weight(floats(out * in, 0.3), floats(out, 1), out, in, true);
        Backend.Lora lora = lora(out, in, r);
        Tensor dx = randn(rows, in, 1), dA = randn(r, in, 1), dB = randn(out, r, 1);
        double[] dx0 = values(dx), dA0 = values(dA), dB0 = values(dB);
        be.linearBackward(x, w, lora, dy, dx, dA, dB);
        DoubleSupplier loss = () -> {
            be.linear(x, w, lora, y);
            return dot(dy, y);
        };
        assertGradient("linear dx", x, minus(values(dx), dx0), loss);
        assertGradient("linear dA", lora.a(), minus(values(dA), dA0), loss);
        assertGradient("linear dB", lora.b(), minus(values(dB), dB0), loss);
    }

    @Test
    void linearBackwardWithoutLora() {
        int rows = 9, in = 37, out = 13;
        Tensor x = randn(rows, in, 1), dy = randn(rows, out, 1), y = be.allocate(rows, out), dx = randn(rows, in, 1);
        Backend.Weight w = be.weight(floats(out * in, 0.3), floats(out, 1), out, in, true);
        double[] dx0 = values(dx);
        be.linearBackward(x, w, null, dy, dx, null, null);
        assertGradient("linear dx", x, minus(values(dx), dx0), () -> {
            be.linear(x, w, null, y);
            return dot(dy, y);
        });
    }

    /** dx null: only the LoRA gradients, and the weight need not be prepared for backward. */
    @Test
    void linearBackwardSkipsDx() {
        int rows = 9, in = 37, out = 13, r = 3;
        Tensor x = randn(rows, in, 1), dy = randn(rows, out, 1), y = be.allocate(rows, out);
        Backend.Weight w = be.weight(floats(out * in, 0.3), null, out, in, false);
        Backend.Lora lora = lora(out, in, r);
        Tensor dA = randn(r, in, 1), dB = randn(out, r, 1);
        double[] dA0 = values(dA), dB0 = values(dB);
        be.linearBackward(x, w, lora, dy, null, dA, dB);
        DoubleSupplier loss = () -> {
            be.linear(x, w, lora, y);
            return dot(dy, y);
        };
        assertGradient("linear dA", lora.a(), minus(values(dA), dA0), loss);
        assertGradient("linear dB", lora.b(), minus(values(dB), dB0), loss);
        assertThrows(IllegalArgumentException.class, () -> be.linearBackward(x, w, lora, dy, be.allocate(rows, in), null, null));
    }

    /** Also shows that the check fails: one gradient element with its sign flipped. */
    @Test
    void layerNormBackward() {
        int rows = 7, n = 37;
        Tensor x = randn(rows, n, 2), w = randn(1, n, 1), b = randn(1, n, 1), dy = randn(rows, n, 1), out = be.allocate(rows, n);
        for (int i = 0; i < rows * n; i++) be.data(x)[i] += 3;
        Tensor dx = randn(rows, n, 1);
        double[] dx0 = values(dx);
        be.layerNormBackward(x, w, 1e-5f, dy, dx);
        double[] analytic = minus(values(dx), dx0);
        DoubleSupplier loss = () -> {
            be.layerNorm(x, w, b, 1e-5f, out);
            return dot(dy, out);
        };
        assertGradient("layerNorm dx", x, analytic, loss);
        analytic[17] = -analytic[17];
        assertTrue(gradientError(x, analytic, loss) > 1e-3, "a flipped sign passed the gradient check");
    }

    @Test
    void rmsNormBackward() {
        int rows = 7, n = 37;
        Tensor x = randn(rows, n, 2), w = randn(1, n, 1), dy = randn(rows, n, 1), out = be.allocate(rows, n), dx = randn(rows, n, 1);
        double[] dx0 = values(dx);
        be.rmsNormBackward(x, w, 1e-6f, dy, dx);
        assertGradient("rmsNorm dx", x, minus(values(dx), dx0), () -> {
            be.rmsNorm(x, w, 1e-6f, out);
            return dot(dy, out);
        });
    }

    /** Overwrites dx, also in place on dy. */
    @Test
    void geluBackward() {
        int rows = 5, n = 37;
        Tensor x = randn(rows, n, 3), dy = randn(rows, n, 1), out = be.allocate(rows, n), dx = randn(rows, n, 1);
        be.geluBackward(x, dy, dx);
        assertGradient("gelu dx", x, values(dx), () -> {
            be.gelu(x, out);
            return dot(dy, out);
        });
        Tensor inPlace = be.uploadDouble(values(dy), rows, n);
        be.geluBackward(x, inPlace, inPlace);
        assertArrayEquals(values(dx), values(inPlace));
    }

    @Test
    void siluMulBackward() {
        int rows = 5, n = 37;
        Tensor gate = randn(rows, n, 3), up = randn(rows, n, 1), dy = randn(rows, n, 1), out = be.allocate(rows, n);
        Tensor dGate = randn(rows, n, 1), dUp = randn(rows, n, 1);
        be.siluMulBackward(gate, up, dy, dGate, dUp);
        DoubleSupplier loss = () -> {
            be.siluMul(gate, up, out);
            return dot(dy, out);
        };
        assertGradient("siluMul dGate", gate, values(dGate), loss);
        assertGradient("siluMul dUp", up, values(dUp), loss);
    }

    private Tensor[] rotaryTables(int maxPos, int half) {
        double[] cos = new double[maxPos * half], sin = new double[maxPos * half];
        for (int i = 0; i < cos.length; i++) {
            double angle = random.nextDouble() * 6;
            cos[i] = Math.cos(angle);
            sin[i] = Math.sin(angle);
        }
        return new Tensor[]{be.uploadDouble(cos, maxPos, half), be.uploadDouble(sin, maxPos, half)};
    }

    /**
     * The gradient of x ↦ R·x is Rᵀ·dy = rotary(dy, inverse). On the k heads of a fused [q|k|v]
     * layout, first 8 of 12 dims: the other columns pass through (gradient dy). The forward rotation
     * in place of the inverse must fail the check.
     */
    @Test
    void rotaryBackwardIsTheInverseRotation() {
        int heads = 3, dim = 12, dims = 8, cols = heads * 3 * dim, rows = PACKING.tokens();
        Tensor[] cs = rotaryTables(32, dims / 2);
        Tensor x = randn(rows, cols, 1), dy = randn(rows, cols, 1), rotated = be.allocate(rows, cols);
        DoubleSupplier loss = () -> {
            System.arraycopy(be.data(x), 0, be.data(rotated), 0, rows * cols);
            be.rotary(PACKING, new Heads(rotated, dim, 3 * dim, heads, dim), dims, cs[0], cs[1], false);
            return dot(dy, rotated);
        };
        for (boolean inverse : new boolean[]{true, false}) {
            Tensor dx = be.uploadDouble(values(dy), rows, cols);
            be.rotary(PACKING, new Heads(dx, dim, 3 * dim, heads, dim), dims, cs[0], cs[1], inverse);
            if (inverse) assertGradient("rotary dx", x, values(dx), loss);
            else assertTrue(gradientError(x, values(dx), loss) > 1e-3, "the forward rotation passed as the gradient");
        }
    }

    /** GPT-NeoX's fused qkv [rows, H·3D] (q at 0, k at D, v at 2D, stride 3D), gradients as views of one tensor. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void attentionBackwardFusedQkv(boolean causal) {
        int heads = 3, dim = 12, rows = PACKING.tokens(), cols = heads * 3 * dim;
        float scale = (float) (1 / Math.sqrt(dim));
        Tensor qkv = randn(rows, cols, 1.5), dOut = randn(rows, heads * dim, 1), out = be.allocate(rows, heads * dim);
        Tensor dqkv = randn(rows, cols, 1);
        be.attentionBackward(PACKING, fused(qkv, 0, heads, dim), fused(qkv, 1, heads, dim), fused(qkv, 2, heads, dim), causal, scale, dOut,
                fused(dqkv, 0, heads, dim), fused(dqkv, 1, heads, dim), fused(dqkv, 2, heads, dim));
        assertGradient("attention dqkv causal=" + causal, qkv, values(dqkv), () -> {
            be.attention(PACKING, fused(qkv, 0, heads, dim), fused(qkv, 1, heads, dim), fused(qkv, 2, heads, dim), causal, scale, out);
            return dot(dOut, out);
        });
    }

    private static Heads fused(Tensor qkv, int which, int heads, int dim) {
        return new Heads(qkv, which * dim, 3 * dim, heads, dim);
    }

    /**
     * GQA, 4 query heads over 2 key/value heads: q after 3 unrelated columns (which dq must leave
     * alone), k and v interleaved in one tensor; a key/value head's gradient sums its 2 query heads.
     */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void attentionBackwardGqa(boolean causal) {
        int heads = 4, kvHeads = 2, dim = 12, rows = PACKING.tokens(), skip = 3, qCols = skip + heads * dim, kvCols = 2 * kvHeads * dim;
        float scale = (float) (1 / Math.sqrt(dim));
        Tensor q = randn(rows, qCols, 1.5), kv = randn(rows, kvCols, 1.5), dOut = randn(rows, heads * dim, 1), out = be.allocate(rows, heads * dim);
        Tensor dq = randn(rows, qCols, 1), dkv = randn(rows, kvCols, 1);
        double[] dq0 = values(dq);
        be.attentionBackward(PACKING, new Heads(q, skip, dim, heads, dim), new Heads(kv, 0, 2 * dim, kvHeads, dim),
                new Heads(kv, dim, 2 * dim, kvHeads, dim), causal, scale, dOut,
                new Heads(dq, skip, dim, heads, dim), new Heads(dkv, 0, 2 * dim, kvHeads, dim), new Heads(dkv, dim, 2 * dim, kvHeads, dim));
        double[] dqHeads = values(dq);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < skip; c++) {
                assertEquals(dq0[r * qCols + c], dqHeads[r * qCols + c], "a column outside the heads changed");
                dqHeads[r * qCols + c] = 0;
            }
        DoubleSupplier loss = () -> {
            be.attention(PACKING, new Heads(q, skip, dim, heads, dim), new Heads(kv, 0, 2 * dim, kvHeads, dim),
                    new Heads(kv, dim, 2 * dim, kvHeads, dim), causal, scale, out);
            return dot(dOut, out);
        };
        assertGradient("attention dq causal=" + causal, q, dqHeads, loss);
        assertGradient("attention dkv causal=" + causal, kv, values(dkv), loss);
    }

    @ParameterizedTest
    @EnumSource(Pooling.class)
    void poolBackward(Pooling how) {
        int cols = 13, rows = PACKING.tokens();
        Tensor x = randn(rows, cols, 1), dPooled = randn(PACKING.seqs(), cols, 1), out = be.allocate(PACKING.seqs(), cols), dx = randn(rows, cols, 1);
        be.poolBackward(PACKING, how, dPooled, dx);
        assertGradient("pool " + how, x, values(dx), () -> {
            be.pool(PACKING, x, how, out);
            return dot(dPooled, out);
        });
    }

    /**
     * All four transpose combinations: c = α·op(a)·op(b) + β·c against direct loops (and β = 0 ignoring
     * a NaN c), then the products training uses for the gradients of ⟨dc, op(a)·op(b)⟩ against finite
     * differences: d op(a) = dc·op(b)ᵀ, d op(b) = op(a)ᵀ·dc.
     */
    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3})
    void matmul(int transposes) {
        boolean transA = (transposes & 1) != 0, transB = (transposes & 2) != 0;
        int m = 7, k = 13, n = 5;
        Tensor a = transA ? randn(k, m, 1) : randn(m, k, 1), b = transB ? randn(n, k, 1) : randn(k, n, 1), c = randn(m, n, 1);
        double[] ad = be.data(a), bd = be.data(b), c0 = values(c), expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < k; l++) s += (transA ? ad[l * m + i] : ad[i * k + l]) * (transB ? bd[j * k + l] : bd[l * n + j]);
                expected[i * n + j] = 0.75 * s - 0.5 * c0[i * n + j];
            }
        be.matmul(a, transA, b, transB, 0.75f, -0.5f, c);
        assertArrayEquals(expected, values(c), 1e-12);
        Arrays.fill(be.data(c), Double.NaN);
        be.matmul(a, transA, b, transB, 1f, 0f, c);
        for (int i = 0; i < m * n; i++) assertEquals((expected[i] + 0.5 * c0[i]) / 0.75, be.data(c)[i], 1e-12);

        Tensor dc = randn(m, n, 1), da = be.allocate(a.rows(), a.cols()), db = be.allocate(b.rows(), b.cols());
        if (transA) be.matmul(b, transB, dc, true, 1f, 0f, da);
        else be.matmul(dc, false, b, !transB, 1f, 0f, da);
        if (transB) be.matmul(dc, true, a, transA, 1f, 0f, db);
        else be.matmul(a, !transA, dc, false, 1f, 0f, db);
        DoubleSupplier loss = () -> {
            be.matmul(a, transA, b, transB, 1f, 0f, c);
            return dot(dc, c);
        };
        assertGradient("matmul da", a, values(da), loss);
        assertGradient("matmul db", b, values(db), loss);
    }

    @Test
    void rejectsWhatTheContractForbids() {
        Tensor x = randn(3, 5, 1), dy = randn(3, 5, 1);
        assertThrows(IllegalArgumentException.class, () -> be.geluBackward(x, dy, x));
        assertThrows(IllegalArgumentException.class, () -> be.layerNormBackward(x, randn(1, 5, 1), 1e-5f, dy, x.firstRows(2)));
        Tensor qkv = randn(PACKING.tokens(), 36, 1), dOut = randn(PACKING.tokens(), 12, 1);
        assertThrows(IllegalArgumentException.class, () -> be.attentionBackward(PACKING, fused(qkv, 0, 1, 12), fused(qkv, 1, 1, 12),
                fused(qkv, 2, 1, 12), true, 0.3f, dOut, fused(qkv, 0, 1, 12), fused(qkv, 1, 1, 12), fused(qkv, 2, 1, 12)));
        Tensor[] cs = rotaryTables(10, 4);
        assertThrows(IllegalArgumentException.class, () -> be.rotary(PACKING, Heads.packed(qkv, 3, 12), 8, cs[0], cs[1], false));
    }

    /** The FP32 inputs of {@link #forwardOps}, drawn once and uploaded to each backend. */
    private record Inputs(float[] x, float[] d, float[] w, float[] bias, float[] a, float[] b, float[] norm, float[] normBias,
                          float[] q, float[] kv, float[] qkv, float[] cos, float[] sin, float[] table, float[] positions, int[] ids,
                          float[] ma, float[] mb, float[] mc) {}

    private static final int ROWS = 25, IN = 37, OUT = 13, R = 3, HEADS = 4, KV_HEADS = 2, DIM = 12, ROTARY = 8, MAX_POS = 32, VOCAB = 7;

    private Inputs inputs() {
        float[] cos = new float[MAX_POS * ROTARY / 2], sin = new float[MAX_POS * ROTARY / 2];
        for (int i = 0; i < cos.length; i++) {
            double angle = random.nextDouble() * 6;
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
        int[] ids = new int[ROWS];
        for (int i = 0; i < ROWS; i++) ids[i] = random.nextInt(VOCAB);
        return new Inputs(floats(ROWS * IN, 2), floats(ROWS * IN, 1), floats(OUT * IN, 0.3), floats(OUT, 1), floats(R * IN, 0.3),
                floats(OUT * R, 0.3), floats(IN, 1), floats(IN, 1), floats(ROWS * HEADS * DIM, 1.5), floats(ROWS * 2 * KV_HEADS * DIM, 1.5),
                floats(ROWS * 3 * HEADS * DIM, 1.5), cos, sin, floats(VOCAB * IN, 1), floats(MAX_POS * IN, 1), ids,
                floats(IN * OUT, 1), floats(OUT * 9, 1), floats(IN * 9, 1));
    }

    /** Every forward op on be from the same inputs; the outputs by name. */
    private static Map<String, float[]> forwardOps(Backend be, Inputs in) {
        Map<String, float[]> results = new LinkedHashMap<>();
        Tensor x = be.upload(in.x, ROWS, IN), y = be.allocate(ROWS, OUT), h = be.allocate(ROWS, IN);
        be.linear(x, be.weight(in.w, in.bias, OUT, IN, false), new Backend.Lora(be.upload(in.a, R, IN), be.upload(in.b, OUT, R), 0.7f), y);
        results.put("linear + LoRA", be.download(y));
        be.linear(x, be.weight(in.w, null, OUT, IN, false), null, y);
        results.put("linear", be.download(y));
        Tensor norm = be.upload(in.norm, 1, IN);
        be.layerNorm(x, norm, be.upload(in.normBias, 1, IN), 1e-5f, h);
        results.put("layerNorm", be.download(h));
        be.rmsNorm(x, norm, 1e-6f, h);
        results.put("rmsNorm", be.download(h));
        be.gelu(x, h);
        results.put("gelu", be.download(h));
        be.siluMul(x, be.upload(in.d, ROWS, IN), h);
        results.put("siluMul", be.download(h));
        be.add(x, be.upload(in.d, ROWS, IN), h);
        results.put("add", be.download(h));
        be.embed(in.ids, be.upload(in.table, VOCAB, IN), h);
        be.addPositions(PACKING, be.upload(in.positions, MAX_POS, IN), h);
        results.put("embed + addPositions", be.download(h));
        Tensor pooled = be.allocate(PACKING.seqs(), IN);
        for (Pooling how : Pooling.values()) {
            be.pool(PACKING, x, how, pooled);
            results.put("pool " + how, be.download(pooled));
        }
        Tensor cos = be.upload(in.cos, MAX_POS, ROTARY / 2), sin = be.upload(in.sin, MAX_POS, ROTARY / 2);
        for (boolean inverse : new boolean[]{false, true}) {
            Tensor qkv = be.upload(in.qkv, ROWS, 3 * HEADS * DIM);
            be.rotary(PACKING, fused(qkv, 1, HEADS, DIM), ROTARY, cos, sin, inverse);
            results.put("rotary inverse=" + inverse, be.download(qkv));
        }
        Tensor q = be.upload(in.q, ROWS, HEADS * DIM), kv = be.upload(in.kv, ROWS, 2 * KV_HEADS * DIM), qkv = be.upload(in.qkv, ROWS, 3 * HEADS * DIM);
        Tensor out = be.allocate(ROWS, HEADS * DIM);
        float scale = (float) (1 / Math.sqrt(DIM));
        for (boolean causal : new boolean[]{true, false}) {
            be.attention(PACKING, Heads.packed(q, HEADS, DIM), new Heads(kv, 0, 2 * DIM, KV_HEADS, DIM), new Heads(kv, DIM, 2 * DIM, KV_HEADS, DIM),
                    causal, scale, out);
            results.put("attention GQA causal=" + causal, be.download(out));
            be.attention(PACKING, fused(qkv, 0, HEADS, DIM), fused(qkv, 1, HEADS, DIM), fused(qkv, 2, HEADS, DIM), causal, scale, out);
            results.put("attention fused causal=" + causal, be.download(out));
        }
        Tensor c = be.upload(in.mc, IN, 9);
        be.matmul(be.upload(in.ma, IN, OUT), false, be.upload(in.mb, OUT, 9), false, 0.75f, -0.5f, c);
        results.put("matmul", be.download(c));
        be.matmul(be.upload(in.ma, OUT, IN), true, be.upload(in.mb, 9, OUT), true, 1.5f, 0f, c);
        results.put("matmul transposed", be.download(c));
        return results;
    }

    @Test
    void forwardOpsAgreeWithCpuBackend() {
        Inputs in = inputs();
        Map<String, float[]> expected = forwardOps(be, in), actual;
        try (Backend cpu = new CpuBackend(2)) {
            actual = forwardOps(cpu, in);
        }
        for (String op : expected.keySet()) {
            float[] e = expected.get(op), a = actual.get(op);
            double worst = 0;
            for (int i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]) / Math.max(Math.abs(e[i]), 1));
            assertTrue(worst <= 1e-5, op + ": CPU differs from the reference by " + worst);
        }
    }
}
