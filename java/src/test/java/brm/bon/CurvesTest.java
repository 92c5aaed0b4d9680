package brm.bon;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CurvesTest {
    /** P pools of N samples with random gold and a proxy reward that agrees with gold only partly. */
    private static Scored pools(Random random, int P, int N) {
        List<Scored.Pool> pools = new ArrayList<>();
        int line = 1;
        for (int p = 0; p < P; p++) {
            List<Scored.Sample> samples = new ArrayList<>();
            for (int i = 0; i < N; i++) {
                double gold = random.nextGaussian();
                samples.add(new Scored.Sample(line++, i, gold, 0.5 * gold + random.nextGaussian(), Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                        null, null, null));
            }
            pools.add(new Scored.Pool("p" + p, samples));
        }
        return new Scored("test.jsonl", pools, false, false);
    }

    @Test
    void pairedDifferenceIsTheDifferenceOfMeansWithItsOwnError() {
        Random random = new Random(17);
        Scored scored = pools(random, 9, 13);
        Ranker map = Ranker.parse("map"), oracle = Ranker.parse("oracle");
        int[] grid = {1, 4, 13};
        List<Curves.Row> rows = Curves.of(scored, List.of(map, oracle), grid);
        for (int j = 0; j < grid.length; j++) {
            Curves.Difference d = Curves.difference(scored, oracle, map, grid[j]);
            assertEquals(rows.get(grid.length + j).gold() - rows.get(j).gold(), d.gold(), 1e-12, "n = " + grid[j]);
            if (grid[j] == 1) assertEquals(0, d.goldSe(), 1e-12, "at n = 1 every ranker gets the pool mean");
            else assertTrue(d.gold() > 0 && d.goldSe() > 0 && d.goldSe() < rows.get(grid.length + j).goldSe() + rows.get(j).goldSe(), d.toString());
        }
        Curves.Difference self = Curves.difference(scored, map, map, 13);
        assertEquals(0, self.gold(), 0.0);
        assertEquals(0, self.goldSe(), 0.0);
    }
}
