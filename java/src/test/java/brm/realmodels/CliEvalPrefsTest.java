package brm.realmodels;

import brm.io.Jsonl;
import brm.reward.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** brm eval-prefs on pairs of fixture sequences, against metrics computed from the PyTorch reference rewards. */
class CliEvalPrefsTest {
    @TempDir
    Path tmp;

    @Test
    void metricsFollowTheReferenceRewards() throws IOException {
        String fixture = "llama_gqa";
        JsonNode expected = Fixtures.expected(fixture);
        List<int[]> sequences = Fixtures.sequences(expected);
        double[] rewards = Fixtures.flat(expected.get("rewards"));
        Random random = new Random();
        List<String> lines = new ArrayList<>();
        double correct = 0, nll = 0;
        int pairs = 12;
        for (int k = 0; k < pairs; k++) {
            int a = random.nextInt(sequences.size()), b = (a + 1 + random.nextInt(sequences.size() - 1)) % sequences.size();
            var pair = Jsonl.JSON.createObjectNode();
            pair.set("chosen_ids", Jsonl.JSON.valueToTree(sequences.get(a)));
            pair.set("rejected_ids", Jsonl.JSON.valueToTree(sequences.get(b)));
            lines.add(pair.toString());
            double delta = rewards[a] - rewards[b];
            correct += delta > 0 ? 1 : 0;
            nll += Math.log1p(Math.exp(-delta));
        }
        Path data = tmp.resolve("pairs.jsonl"), metrics = tmp.resolve("metrics.json");
        Files.write(data, lines);
        var result = Cli.run("eval-prefs", "--model", Fixtures.dir(fixture).toString(), "--data", data.toString(),
                "--batch-size", "5", "--output", metrics.toString());
        assertEquals(0, result.status(), result.err());
        JsonNode m = Jsonl.JSON.readTree(metrics.toFile());
        assertEquals(pairs, m.get("pairs").asInt());
        assertEquals(correct / pairs, m.get("accuracy").asDouble(), 1e-12);
        assertEquals(nll / pairs, m.get("nll").asDouble(), 1e-4);
        assertTrue(result.out().startsWith("pairs " + pairs + "  accuracy "), result.out());
    }

    @Test
    void identicalSidesAndMissingFieldsAreNamed() throws IOException {
        Path data = tmp.resolve("bad.jsonl");
        Files.writeString(data, "{\"chosen_ids\": [1, 2, 3], \"rejected_ids\": [1, 2, 4]}\n{\"chosen_ids\": [5, 6], \"rejected_ids\": [5, 6]}\n");
        var result = Cli.run("eval-prefs", "--model", Fixtures.dir("llama_gqa").toString(), "--data", data.toString(),
                "--output", tmp.resolve("m.json").toString());
        assertEquals(1, result.status());
        assertEquals(List.of("brm eval-prefs: " + data + ":2: chosen and rejected are the same sequence (--skip-identical skips such pairs)"), result.errLines());
        assertFalse(Files.exists(tmp.resolve("m.json")));
        Files.writeString(data, "{\"prompt\": \"a\", \"chosen\": \"b\"}\n");
        result = Cli.run("eval-prefs", "--model", Fixtures.dir("llama_gqa").toString(), "--data", data.toString());
        assertEquals(List.of("brm eval-prefs: " + data + ":1: missing field \"rejected\""), result.errLines());
    }
}
