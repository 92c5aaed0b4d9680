package brm.laplace;

import brm.cpu.Lanes;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float64 row loops of the Laplace linear algebra: Vector API (DoubleVector.SPECIES_PREFERRED)
 * over n contiguous doubles at given offsets, full vectors then one masked tail. Rows of a row-major
 * matrix are contiguous, so every O(n³) loop of {@link SymmetricEigen} and {@link LowRankFactor}
 * runs through these.
 *
 *   dot        Σ x[i]·y[i]
 *   axpy       y[i] += α·x[i]
 *   dotAxpy    Σ x[i]·v[i], and p[i] += α·x[i]      (one pass over x: a symmetric mat-vec row)
 *   rank2      x[i] -= α·u[i] + β·w[i]
 *   rotations  a list of (row_i, row_{i+1}) ← (c·row_i − s·row_{i+1}, s·row_i + c·row_{i+1}) on [n, n]
 *
 * Lane sums are added in lane order ({@link Lanes#sum}) so results do not change as the JIT warms up.
 */
final class DoubleKernels {
    private DoubleKernels() {}

    private static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private static DoubleVector load(double[] a, int o, int i, VectorMask<Double> m) {
        return DoubleVector.fromArray(S, a, o + i, m);
    }

    /** Σ x[xo+i]·y[yo+i], i &lt; n. */
    static double dot(double[] x, int xo, double[] y, int yo, int n) {
        var acc = DoubleVector.zero(S);
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L)
            acc = DoubleVector.fromArray(S, x, xo + i).fma(DoubleVector.fromArray(S, y, yo + i), acc);
        if (i < n) {
            var m = S.indexInRange(i, n);
            acc = load(x, xo, i, m).fma(load(y, yo, i, m), acc);
        }
        return Lanes.sum(acc);
    }

    /** y[yo+i] += α·x[xo+i], i &lt; n. */
    static void axpy(double alpha, double[] x, int xo, double[] y, int yo, int n) {
        var a = DoubleVector.broadcast(S, alpha);
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L)
            DoubleVector.fromArray(S, x, xo + i).fma(a, DoubleVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        if (i < n) {
            var m = S.indexInRange(i, n);
            load(x, xo, i, m).fma(a, load(y, yo, i, m)).intoArray(y, yo + i, m);
        }
    }

    /** Returns Σ x[xo+i]·v[vo+i] and adds α·x[xo+i] to p[po+i], i &lt; n. */
    static double dotAxpy(double[] x, int xo, double[] v, int vo, double alpha, double[] p, int po, int n) {
        var a = DoubleVector.broadcast(S, alpha);
        var acc = DoubleVector.zero(S);
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L) {
            var xv = DoubleVector.fromArray(S, x, xo + i);
            acc = xv.fma(DoubleVector.fromArray(S, v, vo + i), acc);
            xv.fma(a, DoubleVector.fromArray(S, p, po + i)).intoArray(p, po + i);
        }
        if (i < n) {
            var m = S.indexInRange(i, n);
            var xv = load(x, xo, i, m);
            acc = xv.fma(load(v, vo, i, m), acc);
            xv.fma(a, load(p, po, i, m)).intoArray(p, po + i, m);
        }
        return Lanes.sum(acc);
    }

    /** x[xo+i] -= α·u[uo+i] + β·w[wo+i], i &lt; n. */
    static void rank2(double[] x, int xo, double alpha, double[] u, int uo, double beta, double[] w, int wo, int n) {
        var a = DoubleVector.broadcast(S, -alpha);
        var b = DoubleVector.broadcast(S, -beta);
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += L)
            DoubleVector.fromArray(S, w, wo + i).fma(b, DoubleVector.fromArray(S, u, uo + i).fma(a, DoubleVector.fromArray(S, x, xo + i)))
                    .intoArray(x, xo + i);
        if (i < n) {
            var m = S.indexInRange(i, n);
            load(w, wo, i, m).fma(b, load(u, uo, i, m).fma(a, load(x, xo, i, m))).intoArray(x, xo + i, m);
        }
    }

    /**
     * Applies rotations 0..count-1 in order to a [n, n] row-major, rotation r acting on rows
     * (x, y) = (i, i+1), i = plane[r]: (x, y) ← (c·x − s·y, s·x + c·y). Columns transform
     * independently, so the list is replayed on 4 vectors of columns at a time, packed contiguously
     * (rows of a are n doubles apart: one page per row), and along a chain i, i−1, i−2, … (one QL
     * sweep) the new row i — the y of the next rotation — stays in registers: one load and one store
     * per rotation and vector.
     */
    static void rotations(double[] a, int n, int[] plane, double[] cos, double[] sin, int count) {
        int w = 4 * L;
        double[] strip = new double[n * w]; // columns [col, col+w) of a: row i at i·w, zero beyond n
        for (int col = 0; col < n; col += w) {
            for (int i = 0; i < n; i++)
                for (int q = 0; q < w; q += L) load(a, i * n, col + q, S.indexInRange(col + q, n)).intoArray(strip, i * w + q);
            for (int r = 0; r < count; ) {
                int i = plane[r], yo = (i + 1) * w;
                var y0 = DoubleVector.fromArray(S, strip, yo);
                var y1 = DoubleVector.fromArray(S, strip, yo + L);
                var y2 = DoubleVector.fromArray(S, strip, yo + 2 * L);
                var y3 = DoubleVector.fromArray(S, strip, yo + 3 * L);
                while (true) {
                    int xo = i * w;
                    yo = xo + w;
                    var c = DoubleVector.broadcast(S, cos[r]);
                    var s = DoubleVector.broadcast(S, sin[r]);
                    var ns = DoubleVector.broadcast(S, -sin[r]);
                    var x0 = DoubleVector.fromArray(S, strip, xo);
                    var x1 = DoubleVector.fromArray(S, strip, xo + L);
                    var x2 = DoubleVector.fromArray(S, strip, xo + 2 * L);
                    var x3 = DoubleVector.fromArray(S, strip, xo + 3 * L);
                    y0.fma(c, x0.mul(s)).intoArray(strip, yo);
                    y1.fma(c, x1.mul(s)).intoArray(strip, yo + L);
                    y2.fma(c, x2.mul(s)).intoArray(strip, yo + 2 * L);
                    y3.fma(c, x3.mul(s)).intoArray(strip, yo + 3 * L);
                    y0 = y0.fma(ns, x0.mul(c));
                    y1 = y1.fma(ns, x1.mul(c));
                    y2 = y2.fma(ns, x2.mul(c));
                    y3 = y3.fma(ns, x3.mul(c));
                    if (++r == count || plane[r] != i - 1) break;
                    i--;
                }
                int xo = i * w;
                y0.intoArray(strip, xo);
                y1.intoArray(strip, xo + L);
                y2.intoArray(strip, xo + 2 * L);
                y3.intoArray(strip, xo + 3 * L);
            }
            for (int i = 0; i < n; i++)
                for (int q = 0; q < w; q += L)
                    DoubleVector.fromArray(S, strip, i * w + q).intoArray(a, i * n + col + q, S.indexInRange(col + q, n));
        }
    }
}
