package brm.bon;

import brm.BrmException;
import brm.reward.Logistic;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * Synthetic preferences from a gold reward, the paper's protocol: for each prompt, K distinct pairs
 * (a, b) of its samples drawn uniformly, a preferred with probability σ(β·(g_a − g_b)) (Bradley–Terry on
 * the gold rewards), then the label flipped with probability {@code noise}. One Random(seed) serves all
 * prompts in order, so the same samples and seed give the same pairs.
 */
public final class Labeler {
    private Labeler() {}

    /** One sample of a prompt's pool: its position in the input, and its gold reward. */
    public record Sample(int index, double gold) {}

    /** A labelled pair: chosen and rejected sample indexes, and whether label noise flipped it. */
    public record Pair(int chosen, int rejected, boolean flipped) {}

    public static List<Pair> label(String promptId, List<Sample> pool, int pairs, double beta, double noise, Random random) {
        int m = pool.size();
        long possible = (long) m * (m - 1) / 2;
        if (pairs > possible)
            throw new BrmException("prompt " + promptId + " has " + m + " samples: " + possible + " distinct pairs, fewer than --pairs " + pairs);
        List<Pair> out = new ArrayList<>();
        Set<Long> used = new HashSet<>();
        while (out.size() < pairs) {
            int a = random.nextInt(m), b = random.nextInt(m);
            if (a == b || !used.add((long) Math.min(a, b) * m + Math.max(a, b))) continue;
            double p = Logistic.sigmoid(beta * (pool.get(a).gold() - pool.get(b).gold()));
            boolean aWins = random.nextDouble() < p, flipped = random.nextDouble() < noise;
            if (flipped) aWins = !aWins;
            Sample winner = aWins ? pool.get(a) : pool.get(b), loser = aWins ? pool.get(b) : pool.get(a);
            out.add(new Pair(winner.index(), loser.index(), flipped));
        }
        return out;
    }
}
