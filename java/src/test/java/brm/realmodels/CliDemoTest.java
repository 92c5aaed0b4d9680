package brm.realmodels;

import brm.io.Jsonl;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm demo end to end at a tiny scale on the real models (stories260K, bge-small, MiniLM): every stage
 * runs, the outputs are consistent, and a second run resumes by skipping every stage.
 */
class CliDemoTest {
    @Test
    void tinyDemoRunsEveryStageAndResumes(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("demo");
        String[] args = {"demo", "--out", out.toString(), "--prompts", "3", "--n", "4", "--train-samples", "4", "--pairs", "2",
                "--seeds", "1,2", "--epochs", "1", "--threads", "2"};
        Cli.Result first = Cli.run(args);
        assertEquals(0, first.status(), first.err());
        List<Jsonl.Line> pool = Jsonl.read(out.resolve("pool-gold.jsonl"));
        assertEquals(3 * 4, pool.size());
        for (Jsonl.Line l : pool) {
            var v = l.value();
            assertEquals(v.get("gold").asDouble(), v.get("gold_sentiment").asDouble() + 2 * v.get("gold_relevance").asDouble(), 1e-6, l.toString());
            assertTrue(v.get("response_ids").size() > 0 && v.get("response_ids").size() <= 64, l.toString());
        }
        assertEquals(3 * 2, Jsonl.read(out.resolve("pairs.jsonl")).size());
        List<Jsonl.Line> single = Jsonl.read(out.resolve("scored-single.jsonl")), ensemble = Jsonl.read(out.resolve("scored-ensemble.jsonl"));
        assertEquals(2 * 12, single.size(), "every seed's pools");
        assertEquals(12, ensemble.size());
        for (int i = 0; i < 12; i++) {
            var e = ensemble.get(i).value();
            double r1 = single.get(i).value().get("reward").asDouble(), r2 = single.get(12 + i).value().get("reward").asDouble();
            assertEquals(r1, e.get("rewards").get(0).asDouble(), 0.0);
            assertEquals(r2, e.get("rewards").get(1).asDouble(), 0.0);
            assertEquals((r1 + r2) / 2, e.get("reward").asDouble(), 1e-12);
            assertTrue(single.get(i).value().get("std_rel").asDouble() > 0);
        }
        String csv = Files.readString(out.resolve("curves.csv"));
        assertTrue(csv.startsWith("ranker,n,kl,gold,gold_se,proxy\n") && csv.contains("\nmap,4,") && csv.contains("\nla-std:0.25,4,"), csv);
        String report = Files.readString(out.resolve("report.md"));
        assertTrue(report.contains("## Wall time per stage") && report.contains("against the baseline, paired by pool") && report.contains("curves.png"), report);
        assertTrue(Files.size(out.resolve("curves.png")) > 10_000);

        long modified = Files.getLastModifiedTime(out.resolve("scored-seed-1.jsonl")).toMillis();
        Cli.Result second = Cli.run(args);
        assertEquals(0, second.status(), second.err());
        assertTrue(second.out().contains("done before") && !second.out().contains("   brm "), second.out());
        assertTrue(Files.readString(out.resolve("report.md")).contains("(earlier run)"), "skipped stages keep their wall times");
        assertEquals(modified, Files.getLastModifiedTime(out.resolve("scored-seed-1.jsonl")).toMillis(), "the scored file is not redone");
        assertEquals(csv, Files.readString(out.resolve("curves.csv")), "the same curves from the kept stages");
    }
}
