package brm.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Gemm against the double-precision {@link GemmReference} on fresh random inputs (the seed is in
 * every failure message). An element passes when |got − exact| ≤ 1.01·(k + 4)·2⁻²⁴·scale, the
 * worst-case fp32 rounding bound of GemmReference; one wrong or missing term errs by about
 * scale/k, above the bound while k² < 2²⁴ (k up to about 4000, which covers every k tested). Shapes cover the small (unpacked) path, partial
 * MR×NR tiles, several KC/NC/MC blocks, and bands split over 2 threads along rows and columns.
 */
class GemmTest {
    private static final long SEED = new Random().nextLong();
    private static Parallel two;

    @BeforeAll
    static void startThreads() { two = new Parallel(2); }

    @AfterAll
    static void stopThreads() { two.close(); }

    /**
     * m, n, k: tiny, odd, deep (small path and 8 k blocks), exactly one tile, past one KC/NC/MC block, wide, tall,
     * and narrow (n ≤ NARROW: a partial and a full group of four columns, k with and without a vector tail).
     */
    private static final int[][] SHAPES = {
            {1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {1, 2, 3000}, {4, 9, 2001}, {100, 300, 257}, {12, 32, 256},
            {13, 33, 513}, {40, 1100, 30}, {1600, 20, 24}, {5, 70, 300}, {300, 3, 250}, {500, Gemm.NARROW, 37},
            {1000, 9, 64}, {97, 8, 1001}};

    @Test
    void sgemmMatchesReferenceOverTransposesAlphaBetaAndThreads() {
        Random rnd = new Random(SEED);
        float[][] alphaBeta = {{1f, 0f}, {-0.7f, 1f}, {1.3f, -0.5f}};
        for (int[] s : SHAPES)
            for (int trans = 0; trans < 4; trans++)
                for (float[] ab : alphaBeta)
                    for (Parallel par : new Parallel[] {null, two})
                        checkSgemm(rnd, par, (trans & 1) != 0, (trans & 2) != 0, s[0], s[1], s[2], ab[0], ab[1]);
    }

    @Test
    void sgemmWithAlphaZeroOrEmptyKOnlyScalesC() {
        Random rnd = new Random(SEED);
        checkSgemm(rnd, null, false, false, 9, 17, 0, 1f, 0.5f);
        checkSgemm(rnd, two, true, false, 40, 50, 0, 1f, 0f);
        checkSgemm(rnd, null, false, true, 30, 40, 60, 0f, -2f);
        checkSgemm(rnd, two, false, false, 0, 40, 60, 1f, 1f);
    }

    @Test
    void linearMatchesReferenceWithAndWithoutBias() {
        Random rnd = new Random(SEED);
        int[][] shapes = {{1, 1, 1}, {1, 100, 64}, {7, 13, 5}, {33, 65, 17}, {100, 300, 257}, {3, 1100, 40},
                {30, 1, 700}, {1600, 24, 20}, {5, 8, 0}};
        for (int[] s : shapes)
            for (boolean withBias : new boolean[] {false, true})
                for (Parallel par : new Parallel[] {null, two})
                    checkLinear(rnd, par, s[0], s[1], s[2], withBias, 0f);
    }

    /** The single-thread linear with beta: backward's dx += dy·W (beta 1) and a general beta. */
    @Test
    void linearAccumulatesIntoYWithBeta() {
        Random rnd = new Random(SEED);
        int[][] shapes = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {100, 300, 257}, {13, 37, 600}, {5, 8, 0}};
        for (int[] s : shapes)
            for (float beta : new float[] {1f, -0.5f})
                checkLinear(rnd, null, s[0], s[1], s[2], s[0] % 2 == 1, beta);
    }

    @Test
    void rejectsMismatchedShapes() {
        assertThrows(IllegalArgumentException.class, () -> Gemm.pack(new float[6], 4, 2));
        Gemm.PackedWeight w = Gemm.pack(new float[6], 3, 2);
        assertThrows(IllegalArgumentException.class, () -> Gemm.linear(new float[3], 0, 2, w, null, new float[6], 0));
        assertThrows(IllegalArgumentException.class, () -> Gemm.linear(new float[4], 0, 2, w, new float[2], new float[6], 0));
        assertThrows(IllegalArgumentException.class, () ->
                Gemm.sgemm(false, false, 2, 2, 3, 1f, new float[6], 0, 2, new float[6], 0, 2, 0f, new float[4], 0, 2));
    }

    private static void checkSgemm(Random rnd, Parallel par, boolean transA, boolean transB,
                                   int m, int n, int k, float alpha, float beta) {
        int rowsA = transA ? k : m, colsA = transA ? m : k, rowsB = transB ? n : k, colsB = transB ? k : n;
        int lda = colsA + rnd.nextInt(3), ldb = colsB + rnd.nextInt(3), ldc = n + rnd.nextInt(3);
        int aOff = rnd.nextInt(4), bOff = rnd.nextInt(4), cOff = rnd.nextInt(4);
        float[] a = random(rnd, aOff + rowsA * lda + 2), b = random(rnd, bOff + rowsB * ldb + 2);
        float[] c = random(rnd, cOff + m * ldc + 2);
        if (alpha == 0f) Arrays.fill(a, Float.NaN); // alpha = 0 must not read A
        if (beta == 0f) Arrays.fill(c, Float.NaN); // beta = 0 must ignore C's garbage
        GemmReference.Expected expected = GemmReference.sgemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        float[] before = c.clone();
        if (par == null) Gemm.sgemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        else Gemm.sgemm(par, transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        String what = "sgemm(transA=" + transA + ", transB=" + transB + ", " + m + "x" + n + "x" + k + ", alpha=" + alpha
                + ", beta=" + beta + ", threads=" + (par == null ? 1 : par.threads()) + ") seed=" + SEED;
        compare(what, expected, k, before, c, cOff, m, n, ldc);
    }

    /** linear, on par's threads or (par null) the single-thread entry point taking beta. */
    private static void checkLinear(Random rnd, Parallel par, int rows, int out, int in, boolean withBias, float beta) {
        int xOff = rnd.nextInt(4), yOff = rnd.nextInt(4);
        float[] x = random(rnd, xOff + rows * in + 2), w = random(rnd, out * in);
        float[] bias = withBias ? random(rnd, out) : null, y = random(rnd, yOff + rows * out + 2);
        if (beta == 0f) Arrays.fill(y, Float.NaN); // beta = 0 must ignore y's garbage
        GemmReference.Expected expected = GemmReference.linear(x, xOff, rows, w, out, in, bias, beta, y, yOff);
        Gemm.PackedWeight packed = Gemm.pack(w, out, in);
        float[] before = y.clone();
        if (par == null) Gemm.linear(x, xOff, rows, packed, bias, beta, y, yOff);
        else Gemm.linear(par, x, xOff, rows, packed, bias, y, yOff);
        String what = "linear(" + rows + "x" + out + "x" + in + ", bias=" + withBias + ", beta=" + beta + ", threads="
                + (par == null ? 1 : par.threads()) + ") seed=" + SEED;
        compare(what, expected, in, before, y, yOff, rows, out, out);
    }

    /** Checks the [m, n] window of got (at off, stride ld) against expected and that nothing else changed. */
    private static void compare(String what, GemmReference.Expected expected, int k, float[] before, float[] got,
                                int off, int m, int n, int ld) {
        double ulps = 1.01 * (k + 4) * Math.scalb(1.0, -24);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double want = expected.value()[i * n + j], err = Math.abs(got[off + i * ld + j] - want);
                if (!(err <= ulps * expected.scale()[i * n + j]))
                    fail(what + ": C[" + i + ", " + j + "] = " + got[off + i * ld + j] + ", expected " + want
                            + " (error " + err + " > " + ulps * expected.scale()[i * n + j] + ")");
            }
        for (int e = 0; e < got.length; e++) {
            int i = Math.floorDiv(e - off, ld), j = Math.floorMod(e - off, ld);
            boolean inside = e >= off && i < m && j < n;
            if (!inside)
                assertEquals(Float.floatToRawIntBits(before[e]), Float.floatToRawIntBits(got[e]), what + ": wrote outside C at " + e);
        }
    }

    private static float[] random(Random rnd, int size) {
        float[] v = new float[size];
        for (int i = 0; i < size; i++) v[i] = rnd.nextFloat() * 2f - 1f;
        return v;
    }
}
