package brm.laplace;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import brm.BrmException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * LowRankFactor against the exact M = Σ m_i·m_iᵀ. When M has rank ≤ K the incremental SVD is exact:
 * the sketch must reproduce M to float64 rounding (1e-10 relative leaves room for ~40 updates of
 * ε-level error; a lost direction errs by O(1)). Otherwise every truncation discards a PSD part, so
 * the sketch's eigenvalues can only undershoot: λ̃_k ≤ λ_k (up to rounding, 1e-12·λ_1), and with a
 * decaying spectrum the top one is within 1%.
 */
class LowRankFactorTest {
    /** Rows [count, n] of vectors Σ_j σ_j·g_j·basis_j + noise·g, g Gaussian, basis [rank, n] random. */
    static double[] vectors(Random rnd, int count, int n, int rank, double decay, double noise) {
        double[] basis = new double[rank * n], rows = new double[count * n];
        for (int i = 0; i < basis.length; i++) basis[i] = rnd.nextGaussian();
        for (int c = 0; c < count; c++) {
            for (int j = 0; j < rank; j++) {
                double coef = Math.pow(decay, j) * rnd.nextGaussian();
                for (int i = 0; i < n; i++) rows[c * n + i] += coef * basis[j * n + i];
            }
            for (int i = 0; i < n; i++) rows[c * n + i] += noise * rnd.nextGaussian();
        }
        return rows;
    }

    /** Σ_c rows[c]·rows[c]ᵀ [n, n]. */
    static double[] exact(double[] rows, int count, int n) {
        double[] m = new double[n * n];
        for (int c = 0; c < count; c++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) m[i * n + j] += rows[c * n + i] * rows[c * n + j];
        return m;
    }

    /** Adds rows [count, n] in batches of the given sizes (cycled). */
    static LowRankFactor sketch(double[] rows, int count, int n, int k, int... batches) {
        var f = LowRankFactor.of(n, k);
        for (int start = 0, b = 0; start < count; b++) {
            int size = Math.min(batches[b % batches.length], count - start);
            double[] batch = new double[size * n];
            System.arraycopy(rows, start * n, batch, 0, size * n);
            f.add(batch, n, size);
            start += size;
        }
        return f;
    }

    @Test
    void exactWhenRankIsAtMostK() {
        Random rnd = new Random(21);
        int n = 50, k = 6, count = 300;
        double[] rows = vectors(rnd, count, n, 6, 0.7, 0);
        double[] m = exact(rows, count, n);
        var f = sketch(rows, count, n, k, 37, 1, 64, 13, 5);
        assertEquals(k, f.rank());
        double[] u = f.vectors(), s2 = f.values();
        double max = SymmetricEigenTest.maxAbs(m), err = 0, orth = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int q = 0; q < k; q++) s += u[i * k + q] * s2[q] * u[j * k + q];
                err = Math.max(err, Math.abs(s - m[i * n + j]));
            }
        for (int p = 0; p < k; p++)
            for (int q = 0; q < k; q++) {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += u[i * k + p] * u[i * k + q];
                orth = Math.max(orth, Math.abs(dot - (p == q ? 1 : 0)));
            }
        assertTrue(err <= 1e-10 * max, "sketch of a rank-6 M errs by " + err / max + " relative");
        assertTrue(orth <= 1e-12, "UᵀU − I = " + orth);
        for (int q = 1; q < k; q++) assertTrue(s2[q - 1] >= s2[q], "values descending");
    }

    @Test
    void fullRankEigenvaluesUndershootTheExactOnes() {
        Random rnd = new Random(22);
        int n = 61, k = 9, count = 400;
        double[] rows = vectors(rnd, count, n, 20, 0.8, 0.05);
        double[] exactValues = SymmetricEigen.of(exact(rows, count, n), n).values(); // ascending
        double[] s2 = sketch(rows, count, n, k, 17, 3, 29).values();
        double top = exactValues[n - 1];
        for (int q = 0; q < k; q++)
            assertTrue(s2[q] <= exactValues[n - 1 - q] + 1e-12 * top,
                    "sketch eigenvalue " + q + " = " + s2[q] + " above the exact " + exactValues[n - 1 - q]);
        assertTrue(s2[0] >= 0.99 * top, "top eigenvalue " + s2[0] + " vs exact " + top);
        assertTrue(s2[k - 1] > 0.5 * exactValues[n - k], "k-th eigenvalue " + s2[k - 1] + " vs exact " + exactValues[n - k]);
    }

    @Test
    void fewerVectorsThanKKeepsTheirRank() {
        Random rnd = new Random(23);
        int n = 13, count = 3;
        double[] rows = vectors(rnd, count, n, 13, 1, 0);
        var f = sketch(rows, count, n, 8, 2, 1);
        assertEquals(count, f.rank());
        double[] exactValues = SymmetricEigen.of(exact(rows, count, n), n).values();
        for (int q = 0; q < count; q++) assertEquals(exactValues[n - 1 - q], f.values()[q], 1e-12 * exactValues[n - 1]);
    }

    @Test
    void badInputIsRefused() {
        var f = LowRankFactor.of(7, 3);
        assertThrows(BrmException.class, () -> f.add(new double[14], 7, 3));
        double[] rows = new double[14];
        rows[9] = Double.NaN;
        var ex = assertThrows(BrmException.class, () -> f.add(rows, 7, 2));
        assertTrue(ex.getMessage().contains("row 1"), ex.getMessage());
    }
}
