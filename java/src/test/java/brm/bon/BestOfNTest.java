package brm.bon;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The best-of-n estimator against its closed forms and against enumerating every n-subset. */
class BestOfNTest {
    private final Random random = new Random(61);

    @Test
    void weightsSumToOne() {
        for (int[] nN : new int[][] {{1, 1}, {1, 13}, {3, 13}, {13, 13}, {7, 37}, {64, 1024}, {1000, 12500}, {12500, 12500}}) {
            double[] w = BestOfN.weights(nN[0], nN[1]);
            assertEquals(1.0, Arrays.stream(w).sum(), 1e-12, "n=" + nN[0] + " N=" + nN[1]);
            for (int i = 0; i < nN[0] - 1; i++) assertEquals(0.0, w[i], "below rank n");
        }
        assertThrows(IllegalArgumentException.class, () -> BestOfN.weights(14, 13));
    }

    @Test
    void oneIsTheMeanAndNIsTheTop() {
        double[] gold = gaussians(37), score = gaussians(37);
        long[] index = indices(37);
        double[][] c = BestOfN.curves(gold, score, index, new int[] {1, 37});
        assertEquals(Arrays.stream(gold).average().orElseThrow(), c[0][0], 1e-12);
        int top = 0;
        for (int i = 1; i < 37; i++) if (score[i] > score[top]) top = i;
        assertEquals(gold[top], c[0][1], 1e-12);
        assertEquals(score[top], c[1][1], 1e-12);
    }

    @Test
    void oneToFourRankedByItself() {
        double[] g = {3, 1, 4, 2};
        double[][] c = BestOfN.curves(g, g, indices(4), new int[] {1, 2, 3, 4});
        assertArrayEquals(new double[] {2.5, 10.0 / 3, 3.75, 4}, c[0], 1e-12);
        assertArrayEquals(c[0], c[1], 1e-12);
    }

    @Test
    void kl() {
        assertEquals(1.8351, BestOfN.kl(16), 5e-5);
        assertEquals(8.4336, BestOfN.kl(12500), 5e-5);
        assertEquals(0.0, BestOfN.kl(1));
    }

    @Test
    void goldFollowsTheRankersOrder() {
        // The ranker prefers low gold: sample 2 (gold 1) scores highest, sample 0 (gold 4) lowest.
        double[] gold = {4, 3, 1, 2}, score = {0.1, 0.2, 0.9, 0.5};
        double[][] c = BestOfN.curves(gold, score, indices(4), new int[] {1, 2, 4});
        // ascending by score: gold 4, 3, 2, 1; R(2) = (1·3 + 2·2 + 3·1)/6
        assertArrayEquals(new double[] {2.5, 10.0 / 6, 1}, c[0], 1e-12);
        assertArrayEquals(new double[] {0.425, (0.2 + 2 * 0.5 + 3 * 0.9) / 6, 0.9}, c[1], 1e-12);
    }

    @Test
    void tiesGoBySampleIndex() {
        // equal scores: the highest sample index ranks on top
        double[] gold = {5, 7, 6}, score = {1, 1, 1};
        assertEquals(5, BestOfN.curves(gold, score, new long[] {2, 1, 0}, new int[] {3})[0][0]);
        assertEquals(6, BestOfN.curves(gold, score, new long[] {0, 1, 2}, new int[] {3})[0][0]);
    }

    @Test
    void matchesEnumeratingEverySubset() {
        int N = 7;
        double[] gold = gaussians(N), score = gaussians(N);
        score[3] = score[5]; // a tie, broken by the sample index
        long[] index = indices(N);
        int[] grid = {1, 2, 3, 4, 5, 6, 7};
        double[][] c = BestOfN.curves(gold, score, index, grid);
        for (int n : grid) {
            double goldSum = 0, scoreSum = 0;
            int subsets = 0;
            for (int mask = 0; mask < 1 << N; mask++) {
                if (Integer.bitCount(mask) != n) continue;
                int best = -1;
                for (int i = 0; i < N; i++)
                    if ((mask >> i & 1) != 0 && (best < 0 || score[i] > score[best] || score[i] == score[best] && index[i] > index[best])) best = i;
                goldSum += gold[best];
                scoreSum += score[best];
                subsets++;
            }
            assertEquals(goldSum / subsets, c[0][n - 1], 1e-12, "gold n=" + n);
            assertEquals(scoreSum / subsets, c[1][n - 1], 1e-12, "proxy n=" + n);
        }
    }

    private double[] gaussians(int n) {
        return random.doubles(n).map(u -> 3 * u - 1.3).toArray();
    }

    private static long[] indices(int n) {
        long[] index = new long[n];
        Arrays.setAll(index, i -> i);
        return index;
    }
}
