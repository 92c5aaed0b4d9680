package brm.backend;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each CPU op against a direct float64 loop on random data. Sizes are odd (13, 37, head dim 12) so
 * the masked vector tails run; sequences of 1, 5 and 19 tokens exercise the per-sequence ops.
 */
class CpuBackendTest {
    private final Random random = new Random(20240607);
    private static final Packing PACKING = Packing.of(List.of(new int[1], new int[5], new int[19]));

    private float[] randoms(int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (random.nextGaussian() * scale);
        return x;
    }

    private static void close(String what, double[] expected, float[] actual, double tolerance) {
        double worst = 0;
        for (int i = 0; i < expected.length; i++)
            worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), 1));
        assertTrue(worst <= tolerance, what + ": max relative error " + worst);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void linearWithBiasAndLora(int threads) {
        int rows = 9, in = 37, out = 13, r = 3;
        float scale = 0.7f;
        float[] x = randoms(rows * in, 1), w = randoms(out * in, 0.3), b = randoms(out, 1), a = randoms(r * in, 0.3), bl = randoms(out * r, 0.3);
        double[] expected = new double[rows * out];
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < out; o++) {
                double s = b[o];
                for (int k = 0; k < in; k++) s += (double) x[i * in + k] * w[o * in + k];
                for (int j = 0; j < r; j++) {
                    double ax = 0;
                    for (int k = 0; k < in; k++) ax += (double) a[j * in + k] * x[i * in + k];
                    s += scale * bl[o * r + j] * ax;
                }
                expected[i * out + o] = s;
            }
        try (Backend be = new CpuBackend(threads)) {
            Tensor y = be.allocate(rows, out);
            be.linear(be.upload(x, rows, in), be.weight(w, b, out, in, false), new Backend.Lora(be.upload(a, r, in), be.upload(bl, out, r), scale), y);
            close("linear + lora", expected, be.download(y), 1e-5);
            be.linear(be.upload(x, rows, in), be.weight(w, null, out, in, false), null, y);
            for (int i = 0; i < rows; i++)
                for (int o = 0; o < out; o++) {
                    double s = 0;
                    for (int k = 0; k < in; k++) s += (double) x[i * in + k] * w[o * in + k];
                    expected[i * out + o] = s;
                }
            close("linear", expected, be.download(y), 1e-5);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void layerNormAndRmsNormAndAdd(int threads) {
        int rows = 11, n = 37;
        float[] x = randoms(rows * n, 2), d = randoms(rows * n, 1), w = randoms(n, 1), b = randoms(n, 1);
        for (int i = 0; i < x.length; i++) x[i] += 3;
        double[] sum = new double[rows * n], ln = new double[rows * n], rms = new double[rows * n];
        for (int i = 0; i < sum.length; i++) sum[i] = x[i] + d[i];
        for (int r = 0; r < rows; r++) {
            layerNorm(x, r * n, n, w, b, 1e-5, ln);
            double ms = 0;
            for (int i = 0; i < n; i++) ms += (double) x[r * n + i] * x[r * n + i] / n;
            for (int i = 0; i < n; i++) rms[r * n + i] = x[r * n + i] / Math.sqrt(ms + 1e-6) * w[i];
        }
        try (Backend be = new CpuBackend(threads)) {
            Tensor wt = be.upload(w, 1, n), bt = be.upload(b, 1, n), out = be.allocate(rows, n);
            be.layerNorm(be.upload(x, rows, n), wt, bt, 1e-5f, out);
            close("layerNorm", ln, be.download(out), 1e-5);
            Tensor xt = be.upload(x, rows, n);
            be.layerNorm(xt, wt, bt, 1e-5f, xt);
            close("layerNorm in place", ln, be.download(xt), 1e-5);
            be.rmsNorm(be.upload(x, rows, n), wt, 1e-6f, out);
            close("rmsNorm", rms, be.download(out), 1e-5);
            xt = be.upload(x, rows, n);
            be.add(xt, be.upload(d, rows, n), out);
            close("add", sum, be.download(out), 1e-6);
            be.add(xt, be.upload(d, rows, n), xt);
            close("add in place", sum, be.download(xt), 1e-6);
        }
    }

    private static void layerNorm(float[] x, int o, int n, float[] w, float[] b, double eps, double[] out) {
        double mean = 0, var = 0;
        for (int i = 0; i < n; i++) mean += x[o + i] / (double) n;
        for (int i = 0; i < n; i++) var += (x[o + i] - mean) * (x[o + i] - mean) / n;
        for (int i = 0; i < n; i++) out[o + i] = (x[o + i] - mean) / Math.sqrt(var + eps) * w[i] + b[i];
    }

    /** erfc(z), z ≥ 0, as 2/√π ∫_z^{z+9} e^{-t²} dt by composite Simpson: an independent float64 reference. */
    private static double erfc(double z) {
        int n = 20000;
        double h = 9.0 / n, s = 0;
        for (int i = 0; i <= n; i++) {
            double t = z + i * h, f = Math.exp(-t * t);
            s += (i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2) * f;
        }
        return 2 / Math.sqrt(Math.PI) * s * h / 3;
    }

    /** Exact GELU keeps its relative precision in the negative tail (where 1 + erf cancels). */
    @Test
    void geluMatchesErfDefinition() {
        int n = 301;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (-7 + 12.0 * i / (n - 1) + random.nextDouble() * 0.01);
        double[] expected = new double[n];
        for (int i = 0; i < n; i++) {
            double z = x[i] / Math.sqrt(2);
            expected[i] = 0.5 * x[i] * (z >= 0 ? 2 - erfc(z) : erfc(-z));
        }
        try (Backend be = new CpuBackend(1)) {
            Tensor t = be.upload(x, 1, n);
            be.gelu(t, t);
            float[] y = be.download(t);
            for (int i = 0; i < n; i++)
                assertTrue(Math.abs(y[i] - expected[i]) <= 5e-6 * Math.abs(expected[i]),
                        "gelu(" + x[i] + ") = " + y[i] + ", expected " + expected[i]);
        }
    }

    @Test
    void siluMul() {
        int rows = 3, n = 37;
        float[] g = randoms(rows * n, 3), u = randoms(rows * n, 1);
        double[] expected = new double[rows * n];
        for (int i = 0; i < expected.length; i++) expected[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        try (Backend be = new CpuBackend(2)) {
            Tensor out = be.allocate(rows, n);
            be.siluMul(be.upload(g, rows, n), be.upload(u, rows, n), out);
            close("siluMul", expected, be.download(out), 1e-6);
        }
    }

    /** Rotary on the q heads of an interleaved [q|k|v] per-head layout, first 8 of 12 dims; the rest untouched. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void rotaryRotatesHeadPairsByPosition(int threads) {
        int heads = 3, dim = 12, dims = 8, half = dims / 2, cols = heads * 3 * dim, maxPos = 32, rows = PACKING.tokens();
        float[] x = randoms(rows * cols, 1), cos = new float[maxPos * half], sin = new float[maxPos * half];
        for (int i = 0; i < cos.length; i++) {
            double angle = random.nextDouble() * 6;
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) expected[i] = x[i];
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++) {
                    int o = r * cols + h * 3 * dim, c = PACKING.positions()[r] * half + i;
                    expected[o + i] = (double) x[o + i] * cos[c] - (double) x[o + half + i] * sin[c];
                    expected[o + half + i] = (double) x[o + half + i] * cos[c] + (double) x[o + i] * sin[c];
                }
        try (Backend be = new CpuBackend(threads)) {
            Tensor t = be.upload(x, rows, cols);
            be.rotary(PACKING, new Heads(t, 0, 3 * dim, heads, dim), dims, be.upload(cos, maxPos, half), be.upload(sin, maxPos, half), false);
            close("rotary", expected, be.download(t), 1e-6);
        }
    }

    /** GQA (4 query heads, 2 kv heads), head dim 12, q separate and k, v interleaved in one tensor; causal and not. */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void attentionPerSequenceAndHead(int threads) {
        int heads = 4, kvHeads = 2, dim = 12, rows = PACKING.tokens();
        float scale = (float) (1 / Math.sqrt(dim));
        float[] q = randoms(rows * heads * dim, 1.5), kv = randoms(rows * 2 * kvHeads * dim, 1.5);
        for (boolean causal : new boolean[]{true, false}) {
            double[] expected = new double[rows * heads * dim];
            for (int s = 0; s < PACKING.seqs(); s++)
                for (int h = 0; h < heads; h++) {
                    int g = h / (heads / kvHeads), start = PACKING.start(s), len = PACKING.length(s);
                    for (int t = 0; t < len; t++) {
                        int n = causal ? t + 1 : len;
                        double[] p = new double[n];
                        double max = Double.NEGATIVE_INFINITY, sum = 0;
                        for (int j = 0; j < n; j++) {
                            for (int d = 0; d < dim; d++)
                                p[j] += (double) q[(start + t) * heads * dim + h * dim + d] * kv[(start + j) * 2 * kvHeads * dim + g * 2 * dim + d];
                            p[j] *= scale;
                            max = Math.max(max, p[j]);
                        }
                        for (int j = 0; j < n; j++) sum += p[j] = Math.exp(p[j] - max);
                        for (int j = 0; j < n; j++)
                            for (int d = 0; d < dim; d++)
                                expected[(start + t) * heads * dim + h * dim + d] += p[j] / sum * kv[(start + j) * 2 * kvHeads * dim + g * 2 * dim + dim + d];
                    }
                }
            try (Backend be = new CpuBackend(threads)) {
                Tensor qt = be.upload(q, rows, heads * dim), kvt = be.upload(kv, rows, 2 * kvHeads * dim), out = be.allocate(rows, heads * dim);
                be.attention(PACKING, Heads.packed(qt, heads, dim), new Heads(kvt, 0, 2 * dim, kvHeads, dim),
                        new Heads(kvt, dim, 2 * dim, kvHeads, dim), causal, scale, out);
                close("attention causal=" + causal, expected, be.download(out), 1e-5);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void poolingAndEmbeddings(int threads) {
        int cols = 37, rows = PACKING.tokens(), vocab = 7, maxPos = 20;
        float[] x = randoms(rows * cols, 1), table = randoms(vocab * cols, 1), positions = randoms(maxPos * cols, 1);
        int[] ids = new int[rows];
        for (int r = 0; r < rows; r++) ids[r] = random.nextInt(vocab);
        try (Backend be = new CpuBackend(threads)) {
            Tensor xt = be.upload(x, rows, cols), out = be.allocate(PACKING.seqs(), cols);
            for (Pooling how : Pooling.values()) {
                double[] expected = new double[PACKING.seqs() * cols];
                for (int s = 0; s < PACKING.seqs(); s++) {
                    int first = PACKING.start(s), last = first + PACKING.length(s) - 1;
                    for (int c = 0; c < cols; c++)
                        for (int r = first; r <= last; r++)
                            if (how == Pooling.MEAN || how == Pooling.SUM || r == (how == Pooling.LAST ? last : first))
                                expected[s * cols + c] += (double) x[r * cols + c] / (how == Pooling.MEAN ? PACKING.length(s) : 1);
                }
                be.pool(PACKING, xt, how, out);
                close("pool " + how, expected, be.download(out), 1e-6);
            }
            Tensor e = be.allocate(rows, cols);
            be.embed(ids, be.upload(table, vocab, cols), e);
            be.addPositions(PACKING, be.upload(positions, maxPos, cols), e);
            double[] expected = new double[rows * cols];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    expected[r * cols + c] = (double) table[ids[r] * cols + c] + positions[PACKING.positions()[r] * cols + c];
            close("embed + positions", expected, be.download(e), 1e-6);
        }
    }
}
