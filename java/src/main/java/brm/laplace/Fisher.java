package brm.laplace;

import brm.BrmException;
import brm.reward.Logistic;

import java.util.Locale;
import java.util.Random;

/**
 * The curvature of the Bradley–Terry likelihood that K-FAC approximates, as the per-pair seed
 * backpropagated through r(chosen) (and its negative through r(rejected)), with p = σ(Δ),
 * Δ = r(chosen) − r(rejected):
 *   EXACT      +√(p(1−p))       the exact type-2 Fisher (= GGN) of Bradley–Terry
 *   MC         p − ỹ, ỹ ~ Bernoulli(p) drawn from the seed        (Monte-Carlo Fisher)
 *   EMPIRICAL  p − 1            (the observed label: chosen wins)   (empirical Fisher)
 * Each sequence of a pair is one K-FAC row, so the chosen×rejected cross term of the pair's curvature
 * is dropped.
 */
public enum Fisher {
    EXACT, MC, EMPIRICAL;

    public static Fisher parse(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new BrmException("--fisher must be exact, mc or empirical, not '" + s + "'");
        }
    }

    /** Seeds [2n] (chosen, rejected interleaved) for the rewards [2n]; MC draws from random. */
    float[] seeds(float[] rewards, Random random) {
        float[] seeds = new float[rewards.length];
        for (int i = 0; i < rewards.length / 2; i++) {
            double p = Logistic.sigmoid((double) rewards[2 * i] - rewards[2 * i + 1]);
            double seed = switch (this) {
                case EXACT -> Math.sqrt(p * (1 - p));
                case MC -> p - (random.nextDouble() < p ? 1 : 0);
                case EMPIRICAL -> p - 1;
            };
            seeds[2 * i] = (float) seed;
            seeds[2 * i + 1] = (float) -seed;
        }
        return seeds;
    }
}
