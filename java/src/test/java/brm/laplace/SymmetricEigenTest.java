package brm.laplace;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import brm.BrmException;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * SymmetricEigen on fresh random matrices: A = Q·Λ·Qᵀ and QᵀQ = I to 1e-12 (float64 Householder + QL
 * err by ~n·ε ≈ 4e-14 at n = 200, so a wrong rotation or a dropped reflector, errors of O(1), fails),
 * closed-form spectra, repeated eigenvalues, and the PSD checks of ofPsd.
 */
class SymmetricEigenTest {
    static double[] randomSymmetric(Random rnd, int n) {
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rnd.nextDouble() * 2 - 1;
        return a;
    }

    static double maxAbs(double[] a) {
        double m = 0;
        for (double x : a) m = Math.max(m, Math.abs(x));
        return m;
    }

    /** max |A − QΛQᵀ| / max|A| and max |QᵀQ − I|, with the ascending order of Λ checked. */
    static double[] errors(double[] a, int n, SymmetricEigen eig) {
        double[] q = eig.vectors(), l = eig.values();
        for (int k = 1; k < n; k++) assertTrue(l[k - 1] <= l[k], "eigenvalues ascending at " + k);
        double rec = 0, orth = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0, g = 0;
                for (int k = 0; k < n; k++) {
                    s += q[i * n + k] * l[k] * q[j * n + k];
                    g += q[k * n + i] * q[k * n + j];
                }
                rec = Math.max(rec, Math.abs(a[i * n + j] - s));
                orth = Math.max(orth, Math.abs(g - (i == j ? 1 : 0)));
            }
        return new double[] {rec / Math.max(maxAbs(a), Double.MIN_NORMAL), orth};
    }

    static void assertDecomposes(double[] a, int n, SymmetricEigen eig, String what) {
        double[] err = errors(a, n, eig);
        assertTrue(err[0] <= 1e-12, what + ": reconstruction error " + err[0]);
        assertTrue(err[1] <= 1e-12, what + ": orthogonality error " + err[1]);
    }

    @Test
    void randomSymmetricMatricesReconstruct() {
        Random rnd = new Random(11);
        for (int n : new int[] {1, 2, 7, 37, 200}) {
            double[] a = randomSymmetric(rnd, n);
            double[] copy = a.clone();
            assertDecomposes(a, n, SymmetricEigen.of(a, n), "n = " + n);
            assertArrayEquals(copy, a, "input left unchanged");
        }
    }

    @Test
    void scaledInputsReconstruct() {
        Random rnd = new Random(12);
        for (double scale : new double[] {1e-150, 1e150}) {
            double[] a = randomSymmetric(rnd, 37);
            for (int i = 0; i < a.length; i++) a[i] *= scale;
            assertDecomposes(a, 37, SymmetricEigen.of(a, 37), "scale " + scale);
        }
    }

    @Test
    void diagonalAndTwoByTwoClosedForms() {
        double[] diag = {3, -1, 2.5, 0, 7};
        double[] a = new double[25];
        for (int i = 0; i < 5; i++) a[i * 5 + i] = diag[i];
        var eig = SymmetricEigen.of(a, 5);
        assertArrayEquals(new double[] {-1, 0, 2.5, 3, 7}, eig.values(), 1e-15);
        assertDecomposes(a, 5, eig, "diagonal");

        // [[p, q], [q, r]]: λ = (p + r)/2 ∓ √(((p − r)/2)² + q²)
        double p = 1.3, q = -0.7, r = 0.4, mid = (p + r) / 2, rad = Math.hypot((p - r) / 2, q);
        double[] b = {p, q, q, r};
        var eig2 = SymmetricEigen.of(b, 2);
        assertArrayEquals(new double[] {mid - rad, mid + rad}, eig2.values(), 1e-15);
        assertDecomposes(b, 2, eig2, "2x2");
    }

    @Test
    void rankDeficientGramMatrixHasExactZeros() {
        Random rnd = new Random(13);
        int rows = 5, n = 30;
        double[] x = new double[rows * n];
        for (int i = 0; i < x.length; i++) x[i] = rnd.nextGaussian();
        double[] a = gram(x, rows, n);
        var eig = SymmetricEigen.ofPsd(a, n, "A");
        double[] l = eig.values();
        for (int k = 0; k < n - rows; k++) assertEquals(0.0, l[k], "eigenvalue " + k + " of a rank-5 Gram matrix");
        for (int k = n - rows; k < n; k++) assertTrue(l[k] > 1, "eigenvalue " + k + " = " + l[k]);
        assertDecomposes(a, n, eig, "Gram");
    }

    /** XᵀX [n, n] of x [rows, n]. */
    static double[] gram(double[] x, int rows, int n) {
        double[] a = new double[n * n];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) a[i * n + j] += x[r * n + i] * x[r * n + j];
        return a;
    }

    @Test
    void repeatedEigenvalues() {
        int n = 13;
        double[] id = new double[n * n];
        for (int i = 0; i < n; i++) id[i * n + i] = 1;
        var eig = SymmetricEigen.of(id, n);
        double[] ones = new double[n];
        Arrays.fill(ones, 1);
        assertArrayEquals(ones, eig.values(), 1e-15);
        assertDecomposes(id, n, eig, "identity");

        // Q·diag(2, 2, 2, −1, −1, 5, 5, 5, 5, 0, 0, 0, 0)·Qᵀ for a random orthogonal Q: clusters survive rotation
        double[] spectrum = {2, 2, 2, -1, -1, 5, 5, 5, 5, 0, 0, 0, 0};
        double[] q = SymmetricEigen.of(randomSymmetric(new Random(14), n), n).vectors();
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++) a[i * n + j] += q[i * n + k] * spectrum[k] * q[j * n + k];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) a[i * n + j] = a[j * n + i]; // exactly symmetric
        var clustered = SymmetricEigen.of(a, n);
        double[] sorted = spectrum.clone();
        Arrays.sort(sorted);
        assertArrayEquals(sorted, clustered.values(), 1e-13);
        assertDecomposes(a, n, clustered, "clusters");

        // block diagonal: two copies of the same random 7x7 block, every eigenvalue twice
        double[] block = randomSymmetric(new Random(15), 7), twice = new double[14 * 14];
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 7; j++) twice[i * 14 + j] = twice[(i + 7) * 14 + j + 7] = block[i * 7 + j];
        var pairs = SymmetricEigen.of(twice, 14);
        double[] single = SymmetricEigen.of(block, 7).values();
        for (int k = 0; k < 7; k++) {
            assertEquals(single[k], pairs.values()[2 * k], 1e-14);
            assertEquals(single[k], pairs.values()[2 * k + 1], 1e-14);
        }
        assertDecomposes(twice, 14, pairs, "block diagonal");
    }

    @Test
    void nonFiniteInputNamesTheFactor() {
        double[] a = randomSymmetric(new Random(16), 7);
        a[3 * 7 + 5] = a[5 * 7 + 3] = Double.NaN;
        var ex = assertThrows(BrmException.class, () -> SymmetricEigen.ofPsd(a, 7, "layers.3.mlp.A"));
        assertTrue(ex.getMessage().contains("layers.3.mlp.A") && ex.getMessage().contains("non-finite"), ex.getMessage());
        a[3 * 7 + 5] = a[5 * 7 + 3] = Double.POSITIVE_INFINITY;
        assertThrows(BrmException.class, () -> SymmetricEigen.of(a, 7));
    }

    @Test
    void asymmetricInputIsRefused() {
        double[] a = randomSymmetric(new Random(17), 7);
        a[1 * 7 + 4] += 1e-3;
        var ex = assertThrows(BrmException.class, () -> SymmetricEigen.ofPsd(a, 7, "G"));
        assertTrue(ex.getMessage().contains("G is not symmetric"), ex.getMessage());
    }

    @Test
    void negativeEigenvalueIsNotPsd() {
        Random rnd = new Random(18);
        int rows = 6, n = 9;
        double[] x = new double[rows * n];
        for (int i = 0; i < x.length; i++) x[i] = rnd.nextGaussian();
        double[] a = gram(x, rows, n);
        for (int i = 0; i < n; i++) a[i * n + i] -= 1e-3; // shifts the 3 zero eigenvalues to −1e-3
        var ex = assertThrows(BrmException.class, () -> SymmetricEigen.ofPsd(a, n, "layers.0.attn.G"));
        assertTrue(ex.getMessage().contains("layers.0.attn.G is not positive semi-definite"), ex.getMessage());
    }

    @Test
    void failedDecompositionRetriesThenNamesTheFactor() {
        double[] a = gram(new double[] {1, 2, 3, 4, 5, 6, 7, -8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 2, 9);
        // no QL steps allowed: every attempt, jittered or not, fails
        var ex = assertThrows(BrmException.class, () -> SymmetricEigen.ofPsd(a, 9, "layers.1.mlp.G", 0));
        assertTrue(ex.getMessage().contains("eigendecomposition of layers.1.mlp.G") && ex.getMessage().contains("failed after jitter"),
                ex.getMessage());
        assertDecomposes(a, 9, SymmetricEigen.ofPsd(a, 9, "layers.1.mlp.G"), "same matrix, normal budget");
    }
}
