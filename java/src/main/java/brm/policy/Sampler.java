package brm.policy;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

/**
 * Draws the next token from one row of logits z [vocab], as transformers' sampling does (its warpers in
 * their order: temperature, top-k, top-p):
 *   temperature 0    i = argmax z, the lowest id among equal maxima (greedy; no random draw)
 *   otherwise        w_i = e^((z_i - max z) / T)
 *     top-k          keep the k largest z (equal z: the lower id first)
 *     top-p          sort the kept tokens by w descending (equal: lower id first) and keep the shortest prefix
 *                    whose Σ w ≥ p · Σ_kept w: the smallest set of cumulative probability ≥ p, at least one token
 *     draw           u ~ U[0, 1): the first kept token (in that order) at which the running Σ w exceeds u · Σ_kept w
 * and reports for the drawn token i the raw model's log-probability at temperature 1, untruncated,
 *   logprob_i = z_i - max z - log Σ_j e^(z_j - max z)
 * (not the tempered or truncated distribution the token was drawn from), in float64.
 *
 * Random streams: {@link #stream}(seed, prompt, sample) seeds a SplittableRandom with the SplitMix64
 * mix of the three numbers, so a sample's draws depend on nothing else. Not thread-safe: the buffers
 * are reused from token to token.
 */
public final class Sampler {
    /**
     * @param temperature ≥ 0; 0 is greedy
     * @param topK        keep the K most likely tokens; 0 keeps all
     * @param topP        nucleus mass in (0, 1]; 1 keeps all
     */
    public record Settings(double temperature, int topK, double topP) {
        public static final Settings GREEDY = new Settings(0, 0, 1);

        public Settings {
            if (!(temperature >= 0) || Double.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
            if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0 (0: off), got " + topK);
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        }
    }

    private final Settings settings;
    private final int vocab;
    /** Sort keys of the truncating path: (order of -z) << 32 | id. */
    private final long[] order;
    /** The weights w, in id order or in sorted order. */
    private final double[] weights;
    private double logProb;

    public Sampler(Settings settings, int vocab) {
        this.settings = settings;
        this.vocab = vocab;
        this.order = new long[vocab];
        this.weights = new double[vocab];
    }

    /** The random stream of one sample: a function of (seed, prompt, sample) only. */
    public static RandomGenerator stream(long seed, int prompt, int sample) {
        return new SplittableRandom(mix(mix(mix(seed) + prompt) + sample));
    }

    /** SplitMix64's finaliser after its golden-ratio increment. */
    private static long mix(long z) {
        z += 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The next token from logits[offset, offset + vocab); random is not used when greedy. */
    public int next(float[] logits, int offset, RandomGenerator random) {
        float max = Float.NEGATIVE_INFINITY;
        int argmax = 0;
        for (int i = 0; i < vocab; i++)
            if (logits[offset + i] > max) {
                max = logits[offset + i];
                argmax = i;
            }
        double t = settings.temperature;
        boolean truncates = (settings.topK > 0 && settings.topK < vocab) || settings.topP < 1;
        // the raw normaliser; at temperature 1 without truncation its terms are the weights themselves
        double raw = 0;
        for (int i = 0; i < vocab; i++) raw += weights[i] = Math.exp(logits[offset + i] - max);
        int token;
        if (t == 0) token = argmax;
        else if (truncates) token = truncated(logits, offset, max, t, random);
        else {
            double total = raw;
            if (t != 1) {
                total = 0;
                for (int i = 0; i < vocab; i++) total += weights[i] = Math.exp((logits[offset + i] - max) / t);
            }
            token = draw(total, vocab, false, random);
        }
        logProb = logits[offset + token] - max - Math.log(raw);
        return token;
    }

    /** log p(token) under the raw model (temperature 1, untruncated) of the last {@link #next}. */
    public double logProb() {
        return logProb;
    }

    /** Top-k, then top-p, over the tokens sorted by z descending; weights[j] is the j-th kept token's. */
    private int truncated(float[] logits, int offset, float max, double t, RandomGenerator random) {
        for (int i = 0; i < vocab; i++) order[i] = (long) sortable(0f - logits[offset + i]) << 32 | i;
        Arrays.sort(order);
        int kept = settings.topK > 0 ? Math.min(settings.topK, vocab) : vocab;
        double total = 0;
        for (int j = 0; j < kept; j++) total += weights[j] = Math.exp((logits[offset + id(j)] - max) / t);
        if (settings.topP < 1) {
            double need = settings.topP * total, sum = 0;
            for (int j = 0; j < kept; j++) {
                sum += weights[j];
                if (sum >= need) {
                    kept = j + 1;
                    break;
                }
            }
            total = 0;
            for (int j = 0; j < kept; j++) total += weights[j];
        }
        return draw(total, kept, true, random);
    }

    private int id(int j) {
        return (int) order[j];
    }

    /** Inverse-CDF draw over weights[0, n): in id order, or in the sorted order when sorted. */
    private int draw(double total, int n, boolean sorted, RandomGenerator random) {
        double u = random.nextDouble() * total, sum = 0;
        for (int j = 0; j < n; j++) {
            sum += weights[j];
            if (u < sum) return sorted ? id(j) : j;
        }
        // u·total rounded up to the full sum: the last token with weight
        int j = n - 1;
        while (j > 0 && weights[j] == 0) j--;
        return sorted ? id(j) : j;
    }

    /** An int whose signed order is the float's order (finite values and infinities; 0f - z folds -0 into +0). */
    private static int sortable(float f) {
        int bits = Float.floatToRawIntBits(f);
        return bits ^ ((bits >> 31) & 0x7fffffff);
    }
}
