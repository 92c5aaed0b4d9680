package brm.reward;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PreferenceMetricsTest {
    @Test
    void smallCaseByHand() {
        // Δ = 2, -1, 0: accuracy (1 + 0 + ½)/3; nll = (log(1+e^-2) + log(1+e) + log 2)/3
        var m = PreferenceMetrics.of(new float[] {3, 0, 1}, new float[] {1, 1, 1});
        assertEquals(0.5, m.accuracy(), 1e-12);
        assertEquals((Math.log1p(Math.exp(-2)) + Math.log1p(Math.E) + Math.log(2)) / 3, m.nll(), 1e-12);
        // both orientations of Δ = 0 fall in the bin [0.5, 0.6) with one win in two: |½ − ½| = 0;
        // Δ = 2: p = 0.8808 (won) in [0.8, 0.9), 1−p = 0.1192 (lost) in [0.1, 0.2): each |1−p| or |0−(1−p)| = 0.1192;
        // Δ = −1: p = 0.2689 (won) in [0.2, 0.3): 0.7311; 1−p = 0.7311 (lost) in [0.7, 0.8): 0.7311
        double p2 = 1 / (1 + Math.exp(-2)), pm1 = 1 / (1 + Math.exp(1));
        double expected = (2 * (1 - p2) + 2 * (1 - pm1)) / 6;
        assertEquals(expected, m.ece(), 1e-12);
    }

    @Test
    void aCalibratedModelHasSmallEce() {
        Random random = new Random();
        int n = 20000;
        float[] chosen = new float[n], rejected = new float[n];
        for (int i = 0; i < n; i++) {
            // the true Bradley–Terry margin d; the sampled winner is "chosen"
            double d = random.nextGaussian() * 2;
            boolean firstWins = random.nextDouble() < 1 / (1 + Math.exp(-d));
            chosen[i] = (float) (firstWins ? d : 0);
            rejected[i] = (float) (firstWins ? 0 : d);
        }
        var calibrated = PreferenceMetrics.of(chosen, rejected);
        for (int i = 0; i < n; i++) {
            chosen[i] *= 4;
            rejected[i] *= 4;
        }
        var overconfident = PreferenceMetrics.of(chosen, rejected);
        assertTrue(calibrated.ece() < 0.02, "calibrated ece " + calibrated.ece());
        assertTrue(overconfident.ece() > 3 * calibrated.ece(), "overconfident ece " + overconfident.ece());
        assertEquals(calibrated.accuracy(), overconfident.accuracy(), 1e-12, "scaling Δ keeps its sign");
    }
}
