package brm.laplace;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import brm.BrmException;
import brm.laplace.MarginalLikelihood.Layer;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * MarginalLikelihood: the stationarity condition δ·‖θ*‖² = Σ λ/(λ + δ) against a hand-solved case,
 * optimality of log Z around δ*, per-layer independence, speed on a large layer and the accounting
 * of the zero eigenvalues a low-rank factor leaves out.
 */
class MarginalLikelihoodTest {
    static double[] positive(Random rnd, int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = scale * Math.exp(3 * rnd.nextGaussian());
        return v;
    }

    /** d log Z / d log δ by central differences at δ. */
    static double slope(List<Layer> layers, double delta) {
        double h = 1e-5;
        return (MarginalLikelihood.logZ(layers, new double[] {delta * Math.exp(h)}, 0)
                - MarginalLikelihood.logZ(layers, new double[] {delta * Math.exp(-h)}, 0)) / (2 * h);
    }

    /** γ(δ) = Σ λ/(λ + δ) over all products. */
    static double gamma(List<Layer> layers, double delta) {
        double gamma = 0;
        for (var layer : layers)
            for (double g : layer.gValues())
                for (double a : layer.aValues()) gamma += g * a / (g * a + delta);
        return gamma;
    }

    @Test
    void toyCaseSolvesTheFixedPoint() {
        // 2δ = 4/(4+δ) + 1/(1+δ) + 0.25/(0.25+δ)  ⇒  δ* = 0.8099763300726552 (bisection to 1e-16)
        var layers = List.of(new Layer(new double[] {4, 1, 0.25, 0}, new double[] {1}, 2));
        double delta = MarginalLikelihood.optimalScalar(layers);
        assertEquals(0.8099763300726552, delta, 1e-12);
        assertEquals(0.809976, delta, 1e-6);
        assertEquals(0, slope(layers, delta), 1e-8);
        double at = MarginalLikelihood.logZ(layers, new double[] {delta}, -3.5);
        assertTrue(at >= MarginalLikelihood.logZ(layers, new double[] {delta * 1.01}, -3.5));
        assertTrue(at >= MarginalLikelihood.logZ(layers, new double[] {delta / 1.01}, -3.5));
        // the first form of log Z, with P = 4 and log(0 + δ)
        double direct = -3.5 - 0.5 * (Math.log(4 + delta) + Math.log(1 + delta) + Math.log(0.25 + delta) + Math.log(delta)
                - 4 * Math.log(delta) + 2 * delta);
        assertEquals(direct, at, 1e-13);
    }

    @Test
    void optimumOfARandomModel() {
        Random rnd = new Random(31);
        var layers = List.of(new Layer(positive(rnd, 13, 1), positive(rnd, 37, 0.1), 4.2),
                new Layer(positive(rnd, 7, 10), positive(rnd, 12, 1e-3), 0.3));
        double delta = MarginalLikelihood.optimalScalar(layers);
        assertEquals(0, slope(layers, delta), 1e-6);
        assertEquals(delta * 4.5, gamma(layers, delta), 1e-10 * delta * 4.5);
    }

    @Test
    void perLayerEqualsSolvingEachAlone() {
        Random rnd = new Random(32);
        var first = new Layer(positive(rnd, 9, 1), positive(rnd, 21, 1), 0.7);
        var second = new Layer(positive(rnd, 15, 100), positive(rnd, 5, 0.01), 12.5);
        double[] deltas = MarginalLikelihood.optimalPerLayer(List.of(first, second));
        assertArrayEquals(new double[] {MarginalLikelihood.optimalScalar(List.of(first)), MarginalLikelihood.optimalScalar(List.of(second))},
                deltas, 0);
        assertTrue(Math.abs(deltas[0] - deltas[1]) > 1e-3 * deltas[0], "the two layers want different δ");
        // the per-layer optimum beats the shared one, which beats its neighbours
        var both = List.of(first, second);
        double shared = MarginalLikelihood.optimalScalar(both);
        double perLayer = MarginalLikelihood.logZ(both, deltas, 0), one = MarginalLikelihood.logZ(both, new double[] {shared}, 0);
        assertTrue(perLayer >= one);
        assertTrue(one >= MarginalLikelihood.logZ(both, new double[] {shared * 1.01}, 0));
        assertTrue(one >= MarginalLikelihood.logZ(both, new double[] {shared / 1.01}, 0));
    }

    @Test
    void largeLayerIsFast() {
        Random rnd = new Random(33);
        var layers = List.of(new Layer(positive(rnd, 200, 1), positive(rnd, 300, 1), 55));
        long start = System.nanoTime();
        double delta = MarginalLikelihood.optimalScalar(layers);
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(seconds < 0.5, "60,000 products took " + seconds + " s");
        assertEquals(delta * 55, gamma(layers, delta), 1e-10 * delta * 55);
        assertEquals(0, slope(layers, delta), 1e-9 * delta * 55); // differences of a 60,000-term sum
    }

    @Test
    void lowRankLayerCountsTheMissingZeros() {
        Random rnd = new Random(34);
        double[] g = positive(rnd, 5, 1), a = positive(rnd, 8, 1);
        double[] gFull = new double[17], aFull = new double[23]; // the stored values, then explicit zeros
        System.arraycopy(g, 0, gFull, 0, 5);
        System.arraycopy(a, 0, aFull, 0, 8);
        var sketched = List.of(new Layer(g, 17, a, 23, 3.3));
        var full = List.of(new Layer(gFull, aFull, 3.3));
        assertEquals(17 * 23, sketched.get(0).parameters());
        double delta = MarginalLikelihood.optimalScalar(sketched);
        assertEquals(MarginalLikelihood.optimalScalar(full), delta, 1e-14 * delta);
        assertEquals(MarginalLikelihood.logZ(full, new double[] {delta}, 1.5), MarginalLikelihood.logZ(sketched, new double[] {delta}, 1.5), 1e-12);
        assertArrayEquals(MarginalLikelihood.optimalPerLayer(full), MarginalLikelihood.optimalPerLayer(sketched), 1e-14 * delta);
    }

    @Test
    void noFiniteOptimumIsAnError() {
        var zeroNorm = assertThrows(BrmException.class,
                () -> MarginalLikelihood.optimalScalar(List.of(new Layer(new double[] {1, 2}, new double[] {3}, 0))));
        assertTrue(zeroNorm.getMessage().contains("‖θ*‖² = 0"), zeroNorm.getMessage());
        var flat = assertThrows(BrmException.class,
                () -> MarginalLikelihood.optimalPerLayer(List.of(new Layer(new double[] {1}, new double[] {1}, 1),
                        new Layer(new double[] {0, 0}, 2, new double[] {5}, 3, 1))));
        assertTrue(flat.getMessage().contains("layer 1") && flat.getMessage().contains("every curvature eigenvalue is 0"), flat.getMessage());
        assertThrows(BrmException.class, () -> new Layer(new double[] {1, -1e-3}, new double[] {1}, 1));
        assertThrows(BrmException.class, () -> new Layer(new double[] {1, 2, 3}, 2, new double[] {1}, 1, 1));
        assertThrows(BrmException.class, () -> MarginalLikelihood.logZ(List.of(new Layer(new double[] {1}, new double[] {1}, 1)), new double[] {0}, 0));
    }
}
