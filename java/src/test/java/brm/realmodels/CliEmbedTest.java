package brm.realmodels;

import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.reward.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm embed against the PyTorch reference: a fixture's expected reward is score·pool(h), so the embedding
 * brm writes, dotted with the model's score.weight, must give the reference reward (with the adapter's
 * LoRA: rewards_with_adapter); --normalize must give the same direction at unit length.
 */
class CliEmbedTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({"bert_mean, false", "bert_mean, true", "bert_cls, false", "gpt_neox_parallel, false", "llama_gqa, true"})
    void embeddingsDottedWithTheHeadGiveTheReferenceRewards(String fixture, boolean adapter) throws IOException {
        Path dir = Fixtures.dir(fixture);
        JsonNode expected = Fixtures.expected(fixture);
        List<int[]> sequences = Fixtures.sequences(expected);
        Path input = tmp.resolve("in.jsonl");
        List<String> lines = new ArrayList<>();
        for (int[] ids : sequences) lines.add(Jsonl.JSON.createObjectNode().set("input_ids", Jsonl.JSON.valueToTree(ids)).toString());
        Files.write(input, lines);
        float[] head;
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            head = f.floats(f.info("score.weight"));
        }
        double[] rewards = Fixtures.flat(expected.get(adapter ? "rewards_with_adapter" : "rewards"));
        List<String> args = new ArrayList<>(List.of("embed", "--model", dir.toString(), "--input", input.toString(),
                "--batch-size", Integer.toString(1 + new Random().nextInt(sequences.size()))));
        if (adapter) args.addAll(List.of("--adapter", dir.resolve("adapter").toString()));

        Path raw = tmp.resolve("raw.jsonl"), unit = tmp.resolve("unit.jsonl");
        assertEquals(0, Cli.run(concat(args, "--output", raw.toString(), "--no-normalize")).status());
        assertEquals(0, Cli.run(concat(args, "--output", unit.toString(), "--normalize")).status());
        List<Jsonl.Line> rawLines = Jsonl.read(raw), unitLines = Jsonl.read(unit);
        assertEquals(sequences.size(), rawLines.size());
        for (int s = 0; s < sequences.size(); s++) {
            double[] e = vector(rawLines.get(s)), u = vector(unitLines.get(s));
            assertEquals(s + 1, rawLines.get(s).value().get("id").asInt(), "ids are line numbers when the input has none");
            double dot = 0, norm = 0, cos = 0, unitNorm = 0;
            for (int i = 0; i < e.length; i++) {
                dot += head[i] * e[i];
                norm += e[i] * e[i];
                cos += e[i] * u[i];
                unitNorm += u[i] * u[i];
            }
            assertEquals(rewards[s], dot, 1e-4 * Math.max(1, Math.abs(rewards[s])), fixture + " sequence " + s);
            assertEquals(1, unitNorm, 1e-5);
            assertTrue(Math.abs(cos / Math.sqrt(norm) - 1) < 1e-5, "normalised embedding keeps the direction");
        }
    }

    private static String[] concat(List<String> args, String... more) {
        List<String> all = new ArrayList<>(args);
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }

    private static double[] vector(Jsonl.Line line) {
        JsonNode e = line.value().get("embedding");
        double[] v = new double[e.size()];
        for (int i = 0; i < v.length; i++) v[i] = e.get(i).asDouble();
        return v;
    }
}
