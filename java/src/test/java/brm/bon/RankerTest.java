package brm.bon;

import brm.BrmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The ensemble rankers: UWO with λ = 0 is the mean, WCO the minimum, the LA-ensemble of one member is LA itself. */
class RankerTest {
    private final Random random = new Random(31);

    private double[] draws(int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = random.nextGaussian() * 2;
        return x;
    }

    @Test
    void ensembleCombinations() {
        for (int trial = 0; trial < 20; trial++) {
            double[] members = draws(5), vars = draws(5);
            for (int i = 0; i < vars.length; i++) vars[i] = Math.abs(vars[i]);
            Scored.Sample s = new Scored.Sample(1, 0, 0, members[0], Double.NaN, Double.NaN, Double.NaN, Double.NaN, members, vars, null);
            double mean = 0, min = Double.POSITIVE_INFINITY, meanVar = 0;
            for (int i = 0; i < 5; i++) {
                mean += members[i] / 5;
                min = Math.min(min, members[i]);
                meanVar += vars[i] / 5;
            }
            double spread = 0;
            for (double m : members) spread += (m - mean) * (m - mean) / 5;
            assertEquals(mean, Ranker.parse("mean").score(s, "f"), 1e-12);
            assertEquals(mean, Ranker.parse("uwo:0").score(s, "f"), 1e-12, "UWO with λ = 0 is the mean");
            assertEquals(mean - 0.7 * spread, Ranker.parse("uwo:0.7").score(s, "f"), 1e-12);
            assertEquals(min, Ranker.parse("wco").score(s, "f"), 0.0);
            assertEquals(mean - 2 * Math.sqrt(meanVar + spread), Ranker.parse("la-std:2").score(s, "f"), 1e-12);
            assertEquals(mean - 0.5 * (meanVar + spread), Ranker.parse("la-var:0.5").score(s, "f"), 1e-12);
        }
    }

    @Test
    void relativeRankersPenaliseByTheRelativeUncertainty() {
        double mu = random.nextGaussian(), std = Math.abs(random.nextGaussian()), rel = Math.abs(random.nextGaussian()) + 0.1;
        Scored.Sample s = new Scored.Sample(3, 0, 0, mu, std, std * std, rel, rel * rel, null, null, null);
        assertEquals(mu - 1.5 * rel, Ranker.parse("std-rel:1.5").score(s, "f"), 1e-12);
        assertEquals(mu - 3 * rel * rel, Ranker.parse("var-rel:3").score(s, "f"), 1e-12);
        assertEquals(Ranker.parse("map").score(s, "f"), Ranker.parse("std-rel:0").score(s, "f"), 0.0, "k = 0 is MAP");
        Scored.Sample plain = new Scored.Sample(4, 0, 0, mu, std, std * std, Double.NaN, Double.NaN, null, null, null);
        BrmException e = assertThrows(BrmException.class, () -> Ranker.parse("var-rel:1").score(plain, "s.jsonl"));
        assertTrue(e.getMessage().contains("s.jsonl:4") && e.getMessage().contains("var_rel"), e.getMessage());
    }

    @Test
    void oneMemberLaEnsembleIsLaplace() {
        double mu = random.nextGaussian(), var = Math.abs(random.nextGaussian());
        Scored.Sample s = new Scored.Sample(1, 0, 0, mu, Math.sqrt(var), var, Double.NaN, Double.NaN, new double[] {mu}, new double[] {var}, null);
        assertEquals(Ranker.parse("std:1.5").score(s, "f"), Ranker.parse("la-std:1.5").score(s, "f"), 1e-12);
        assertEquals(Ranker.parse("var:3").score(s, "f"), Ranker.parse("la-var:3").score(s, "f"), 1e-12);
    }

    @Test
    void memberArraysAreReadAndChecked(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("scored.jsonl");
        Files.writeString(file, """
                {"prompt_id": "p", "sample_id": 0, "gold": 1, "reward": 0.5, "rewards": [0.5, 1.5], "vars": [0.1, 0.3]}
                {"prompt_id": "p", "sample_id": 1, "gold": 2, "reward": 0.2, "rewards": [0.2, 0.4], "vars": [0.2]}
                """);
        var e = assertThrows(BrmException.class, () -> Scored.read(file));
        assertEquals(file + ":2: \"rewards\" has 2 members but \"vars\" has 1", e.getMessage());
        Files.writeString(file, """
                {"prompt_id": "p", "sample_id": 0, "gold": 1, "reward": 0.5, "rewards": [0.5, 1.5], "vars": [0.1, 0.3]}
                """);
        Scored.Sample s = Scored.read(file).pools().getFirst().samples().getFirst();
        assertEquals(1.0 - Math.sqrt(0.2 + 0.25), Ranker.parse("la-std:1").score(s, "f"), 1e-12);
    }

    /** Typicality: −‖f − mean_pool f‖², so the sample nearest the pool's mean feature ranks first. */
    @Test
    void typicalityPrefersThePoolMean() {
        double[][] f = {{1, 0}, {0, 1}, {0.5, 0.5}, {3, 3}};
        List<Scored.Sample> pool = new ArrayList<>();
        for (int i = 0; i < f.length; i++) pool.add(new Scored.Sample(i + 1, i, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, null, null, f[i]));
        double[] s = Ranker.parse("typicality").scores(pool, "f");
        double[] mean = {1.125, 1.125};
        for (int i = 0; i < f.length; i++)
            assertEquals(-((f[i][0] - mean[0]) * (f[i][0] - mean[0]) + (f[i][1] - mean[1]) * (f[i][1] - mean[1])), s[i], 1e-12);
        assertTrue(s[2] > s[0] && s[2] > s[1] && s[0] > s[3]);
        List<Scored.Sample> missing = List.of(new Scored.Sample(9, 0, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, null, null, null));
        var e = assertThrows(BrmException.class, () -> Ranker.parse("typicality").scores(missing, "scored.jsonl"));
        assertTrue(e.getMessage().contains("scored.jsonl:9: missing field \"features\""), e.getMessage());
    }

    @Test
    void missingMembersAreNamed() {
        Scored.Sample s = new Scored.Sample(7, 0, 0, 1, Double.NaN, Double.NaN, Double.NaN, Double.NaN, null, null, null);
        var e = assertThrows(BrmException.class, () -> Ranker.parse("uwo:1").score(s, "scored.jsonl"));
        assertTrue(e.getMessage().equals("scored.jsonl:7: missing field \"rewards\" (needed by ranker uwo:1)"), e.getMessage());
        Scored.Sample noVars = new Scored.Sample(8, 0, 0, 1, Double.NaN, Double.NaN, Double.NaN, Double.NaN, new double[] {1, 2}, null, null);
        var v = assertThrows(BrmException.class, () -> Ranker.parse("la-var:1").score(noVars, "scored.jsonl"));
        assertTrue(v.getMessage().contains(":8: missing field \"vars\""), v.getMessage());
        assertThrows(BrmException.class, () -> Ranker.parse("uwo:x"));
    }
}
