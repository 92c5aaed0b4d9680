package brm.bon;

import brm.BrmException;

import java.util.ArrayList;
import java.util.List;

/**
 * Best-of-n curves averaged over prompts. Per ranker and n: gold = mean over the P prompts of R_gold(n),
 * gold_se = s/√P with s the sample standard deviation over prompts (0 when P = 1), proxy = mean of
 * R_proxy(n) (the estimator on the ranker's own scores).
 */
public final class Curves {
    private Curves() {}

    public record Row(String ranker, int n, double kl, double gold, double goldSe, double proxy) {}

    /** One row per ranker and grid entry [G], rankers outermost; every pool must hold at least max(grid) samples. */
    public static List<Row> of(Scored scored, List<Ranker> rankers, int[] grid) {
        int largest = 0;
        for (int n : grid) largest = Math.max(largest, n);
        for (Scored.Pool p : scored.pools())
            if (p.samples().size() < largest)
                throw new BrmException(scored.file() + ": prompt " + p.promptId() + " has " + p.samples().size()
                        + " samples, fewer than the largest n = " + largest);
        List<Row> rows = new ArrayList<>();
        for (Ranker ranker : rankers) {
            double[][][] c = perPool(scored, ranker, grid);
            for (int j = 0; j < grid.length; j++)
                rows.add(new Row(ranker.name(), grid[j], BestOfN.kl(grid[j]), mean(c[0][j]), standardError(c[0][j]), mean(c[1][j])));
        }
        return rows;
    }

    /** A ranker's gold at n minus a baseline's, paired by pool: the mean difference and its standard error. */
    public record Difference(String ranker, String baseline, int n, double gold, double goldSe) {}

    public static Difference difference(Scored scored, Ranker ranker, Ranker baseline, int n) {
        double[] a = perPool(scored, ranker, new int[] {n})[0][0], b = perPool(scored, baseline, new int[] {n})[0][0], d = new double[a.length];
        for (int p = 0; p < d.length; p++) d[p] = a[p] - b[p];
        return new Difference(ranker.name(), baseline.name(), n, mean(d), standardError(d));
    }

    /** [gold, proxy][G][P]: each pool's estimator values at each grid entry. */
    private static double[][][] perPool(Scored scored, Ranker ranker, int[] grid) {
        int P = scored.pools().size(), G = grid.length;
        double[][] gold = new double[G][P], proxy = new double[G][P];
        for (int p = 0; p < P; p++) {
            List<Scored.Sample> samples = scored.pools().get(p).samples();
            int N = samples.size();
            double[] g = new double[N], s = ranker.scores(samples, scored.file());
            long[] index = new long[N];
            for (int i = 0; i < N; i++) {
                g[i] = samples.get(i).gold();
                index[i] = samples.get(i).index();
            }
            double[][] c = BestOfN.curves(g, s, index, grid);
            for (int j = 0; j < G; j++) {
                gold[j][p] = c[0][j];
                proxy[j][p] = c[1][j];
            }
        }
        return new double[][][] {gold, proxy};
    }

    static double mean(double[] x) {
        double s = 0;
        for (double v : x) s += v;
        return s / x.length;
    }

    /** s/√P with s² = Σ(x − x̄)²/(P − 1); 0 for P = 1. */
    static double standardError(double[] x) {
        if (x.length < 2) return 0;
        double m = mean(x), ss = 0;
        for (double v : x) ss += (v - m) * (v - m);
        return Math.sqrt(ss / (x.length - 1) / x.length);
    }
}
