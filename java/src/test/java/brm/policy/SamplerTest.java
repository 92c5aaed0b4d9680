package brm.policy;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sampler's draws against the distribution it claims, on fixed logits over an odd vocabulary of 13:
 * N = 20,000 draws from one seeded stream, Pearson's χ² = Σ_i (count_i - N·p_i)² / (N·p_i) over the tokens it
 * may draw, compared with the χ² quantile at p-value 0.001 for (allowed tokens - 1) degrees of freedom (a right
 * sampler fails one such check in a thousand seeds; this seed passes, and a sampler off by a few percent in any
 * probability fails by far). Tokens outside the allowed set (top-k, top-p) must never be drawn.
 */
class SamplerTest {
    private static final int VOCAB = 13, DRAWS = 20_000;
    /** χ² quantiles at upper tail 0.001 for 1..12 degrees of freedom. */
    private static final double[] CHI2_999 = {10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909};

    private static float[] logits() {
        Random random = new Random(8);
        float[] z = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) z[i] = (float) (random.nextGaussian() * 1.3 + 0.5);
        return z;
    }

    /** softmax(z / t) over the allowed ids, 0 elsewhere, in float64. */
    private static double[] target(float[] z, double t, boolean[] allowed) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : z) max = Math.max(max, v);
        double[] p = new double[z.length];
        for (int i = 0; i < z.length; i++) if (allowed[i]) sum += p[i] = Math.exp((z[i] - max) / t);
        for (int i = 0; i < z.length; i++) p[i] /= sum;
        return p;
    }

    /** Ids sorted by logit, largest first. */
    private static Integer[] ranked(float[] z) {
        Integer[] ids = IntStream.range(0, z.length).boxed().toArray(Integer[]::new);
        Arrays.sort(ids, Comparator.comparingDouble(i -> -z[i]));
        return ids;
    }

    private static void drawsFollow(String what, Sampler.Settings settings, double[] p) {
        float[] z = logits();
        Sampler sampler = new Sampler(settings, VOCAB);
        SplittableRandom random = new SplittableRandom(2024);
        int[] counts = new int[VOCAB];
        for (int d = 0; d < DRAWS; d++) counts[sampler.next(z, 0, random)]++;
        double chi2 = 0;
        int allowed = 0;
        for (int i = 0; i < VOCAB; i++) {
            if (p[i] == 0) {
                assertEquals(0, counts[i], what + ": drew token " + i + ", which is not allowed");
                continue;
            }
            allowed++;
            double expected = DRAWS * p[i];
            chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        }
        System.out.printf("sampler %-22s χ² %.2f over %d tokens (p = 0.001 quantile %.3f)%n", what, chi2, allowed, CHI2_999[allowed - 2]);
        assertTrue(chi2 < CHI2_999[allowed - 2], what + ": χ² " + chi2 + " with " + (allowed - 1) + " degrees of freedom");
    }

    @Test
    void plainAndTemperedDrawsFollowTheSoftmax() {
        boolean[] all = new boolean[VOCAB];
        Arrays.fill(all, true);
        drawsFollow("temperature 1", new Sampler.Settings(1, 0, 1), target(logits(), 1, all));
        drawsFollow("temperature 0.6", new Sampler.Settings(0.6, 0, 1), target(logits(), 0.6, all));
        drawsFollow("temperature 2.5", new Sampler.Settings(2.5, 0, 1), target(logits(), 2.5, all));
    }

    @Test
    void topKDrawsOnlyTheKMostLikelyInProportion() {
        float[] z = logits();
        boolean[] allowed = new boolean[VOCAB];
        Integer[] ranked = ranked(z);
        for (int j = 0; j < 5; j++) allowed[ranked[j]] = true;
        drawsFollow("top-k 5, temperature 0.8", new Sampler.Settings(0.8, 5, 1), target(z, 0.8, allowed));
    }

    /** The nucleus is the shortest prefix by probability whose mass reaches p; here after top-k 9 at temperature 1.5. */
    @Test
    void topPDrawsOnlyTheNucleusInProportion() {
        float[] z = logits();
        double t = 1.5, topP = 0.8;
        Integer[] ranked = ranked(z);
        boolean[] topK = new boolean[VOCAB];
        for (int j = 0; j < 9; j++) topK[ranked[j]] = true;
        double[] p = target(z, t, topK);
        boolean[] nucleus = new boolean[VOCAB];
        double mass = 0;
        for (int j = 0; mass < topP; j++) {
            nucleus[ranked[j]] = true;
            mass += p[ranked[j]];
        }
        int size = (int) IntStream.range(0, VOCAB).filter(i -> nucleus[i]).count();
        assertTrue(size > 2 && size < 9, "a nucleus strictly inside the top-k: " + size);
        drawsFollow("top-k 9, top-p 0.8", new Sampler.Settings(t, 9, topP), target(z, t, nucleus));
    }

    @Test
    void greedyAndTinyNucleusTakeTheArgmaxAndLogProbIsTheRawModels() {
        float[] z = logits();
        int argmax = ranked(z)[0];
        z[VOCAB - 1] = z[argmax];  // a tie: the lower id wins
        double max = z[argmax], sum = 0;
        for (float v : z) sum += Math.exp(v - max);
        SplittableRandom random = new SplittableRandom(1);
        for (Sampler.Settings s : new Sampler.Settings[] {Sampler.Settings.GREEDY, new Sampler.Settings(1, 0, 1e-9), new Sampler.Settings(3, 1, 1)}) {
            Sampler sampler = new Sampler(s, VOCAB);
            for (int d = 0; d < 50; d++) {
                assertEquals(argmax, sampler.next(z, 0, random), s.toString());
                assertEquals(-Math.log(sum), sampler.logProb(), 1e-6, "logprob is the raw log-softmax at temperature 1");
            }
        }
        // a token drawn at temperature 3 still reports its temperature-1 log-probability
        Sampler hot = new Sampler(new Sampler.Settings(3, 0, 1), VOCAB);
        float[] shifted = new float[VOCAB + 4];
        System.arraycopy(z, 0, shifted, 4, VOCAB);
        int token = hot.next(shifted, 4, random);
        assertEquals(z[token] - max - Math.log(sum), hot.logProb(), 1e-6);
    }

    @Test
    void streamsDependOnSeedPromptAndSample() {
        long a = Sampler.stream(7, 0, 1).nextLong();
        assertEquals(a, Sampler.stream(7, 0, 1).nextLong());
        assertNotEquals(a, Sampler.stream(8, 0, 1).nextLong());
        assertNotEquals(a, Sampler.stream(7, 1, 1).nextLong());
        assertNotEquals(a, Sampler.stream(7, 0, 2).nextLong());
        assertNotEquals(Sampler.stream(7, 1, 0).nextLong(), Sampler.stream(7, 0, 1).nextLong(), "prompt and sample are not interchangeable");
    }
}
