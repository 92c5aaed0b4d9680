package brm.bon;

import brm.BrmException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bradley–Terry labels on gold rewards: certain for a large β, flipped by noise 1, σ(βΔ) in frequency, distinct pairs. */
class LabelerTest {
    private static List<Labeler.Sample> pool(Random random, int m) {
        List<Labeler.Sample> pool = new ArrayList<>();
        for (int i = 0; i < m; i++) pool.add(new Labeler.Sample(i, random.nextGaussian()));
        return pool;
    }

    @Test
    void certainAndFlippedLabels() {
        Random random = new Random(1);
        List<Labeler.Sample> pool = pool(random, 9);
        for (Labeler.Pair p : Labeler.label("p", pool, 30, 1e9, 0, new Random(2)))
            assertTrue(pool.get(p.chosen()).gold() > pool.get(p.rejected()).gold(), "β → ∞ prefers the higher gold");
        for (Labeler.Pair p : Labeler.label("p", pool, 30, 1e9, 1, new Random(2))) {
            assertTrue(p.flipped());
            assertTrue(pool.get(p.chosen()).gold() < pool.get(p.rejected()).gold(), "noise 1 flips every label");
        }
        Set<Long> seen = new HashSet<>();
        for (Labeler.Pair p : Labeler.label("p", pool, 36, 1, 0, new Random(3)))
            assertTrue(seen.add((long) Math.min(p.chosen(), p.rejected()) * 9 + Math.max(p.chosen(), p.rejected())), "pairs are distinct");
        var e = assertThrows(BrmException.class, () -> Labeler.label("p7", pool, 37, 1, 0, new Random(4)));
        assertTrue(e.getMessage().startsWith("prompt p7 has 9 samples: 36 distinct pairs"), e.getMessage());
    }

    @Test
    void labelFrequenciesFollowBradleyTerry() {
        List<Labeler.Sample> two = List.of(new Labeler.Sample(0, 0.8), new Labeler.Sample(1, 0.1));
        double beta = 2, p = 1 / (1 + Math.exp(-beta * 0.7));
        Random random = new Random(5);
        int wins = 0, n = 20000;
        for (int i = 0; i < n; i++) if (Labeler.label("p", two, 1, beta, 0.1, random).getFirst().chosen() == 0) wins++;
        double expected = p * 0.9 + (1 - p) * 0.1;
        assertEquals(expected, (double) wins / n, 4 * Math.sqrt(expected * (1 - expected) / n), "P(a ≻ b) = σ(βΔ), flipped with 0.1");
    }
}
