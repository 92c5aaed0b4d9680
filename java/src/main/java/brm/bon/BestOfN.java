package brm.bon;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Best-of-n over one pool of N scored samples, estimated without resampling.
 *
 * Best-of-n draws n samples without replacement from the pool and keeps the one the ranker scores highest.
 * Sort the pool ascending by the ranker's score (ties by sample index) and carry the gold rewards through
 * the same permutation: g_(1) … g_(N). The kept sample is the i-th of the sorted pool exactly when it is
 * drawn with n−1 of the i−1 below it, so the expected gold of the pick is the unbiased
 *
 *     R(n) = Σ_{i=n}^{N} w_i·g_(i),   w_i = C(i−1, n−1) / C(N, n)   (Σ_i w_i = 1).
 *
 * The binomials overflow long before N = 10⁴, so the weights run down from the top by their ratio:
 *
 *     w_N = n/N,   w_{i−1} = w_i·(i−n)/(i−1)   for i = N … n+1.
 *
 * n = 1 gives the pool mean, n = N the gold of the top-ranked sample. The proxy curve is the same
 * estimator on the ranker's own scores (sorted, they are their own permutation). The x axis is the
 * analytic KL of best-of-n from the policy, KL(n) = log n − (n−1)/n.
 */
public final class BestOfN {
    private BestOfN() {}

    /** w [N]: w[i−1] = C(i−1, n−1)/C(N, n) for 1-based rank i, zero below rank n; 1 ≤ n ≤ N. */
    public static double[] weights(int n, int N) {
        if (n < 1 || n > N) throw new IllegalArgumentException("best-of-" + n + " from a pool of " + N);
        double[] w = new double[N];
        w[N - 1] = (double) n / N;
        for (int i = N; i > n; i--) w[i - 2] = w[i - 1] * (i - n) / (i - 1);
        return w;
    }

    /** R(n) for values [N] already sorted into ranker order (ascending). */
    public static double expected(double[] sorted, int n) {
        double[] w = weights(n, sorted.length);
        double r = 0;
        for (int i = n - 1; i < sorted.length; i++) r += w[i] * sorted[i];
        return r;
    }

    /** The permutation [N] that sorts score [N] ascending, ties by index [N] (the sample index). */
    public static int[] order(double[] score, long[] index) {
        return IntStream.range(0, score.length).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> score[i]).thenComparingLong(i -> index[i]))
                .mapToInt(Integer::intValue).toArray();
    }

    /** values [N] taken through the permutation order [N]. */
    public static double[] permute(double[] values, int[] order) {
        return Arrays.stream(order).mapToDouble(i -> values[i]).toArray();
    }

    /** {R_gold(n), R_proxy(n)} over the grid [G], for gold and score [N] of one pool with sample index [N]. */
    public static double[][] curves(double[] gold, double[] score, long[] index, int[] grid) {
        int[] order = order(score, index);
        double[] g = permute(gold, order), s = permute(score, order);
        double[][] out = new double[2][grid.length];
        for (int j = 0; j < grid.length; j++) {
            out[0][j] = expected(g, grid[j]);
            out[1][j] = expected(s, grid[j]);
        }
        return out;
    }

    /** KL(n) = log n − (n−1)/n, in nats. */
    public static double kl(int n) {
        return Math.log(n) - (n - 1.0) / n;
    }
}
