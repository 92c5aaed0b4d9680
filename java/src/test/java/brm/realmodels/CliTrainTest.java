package brm.realmodels;

import brm.io.Jsonl;
import brm.lora.PeftAdapter;
import brm.reward.Fixtures;
import brm.train.Trainer;
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

/**
 * brm train end to end on a tiny GPT-NeoX and separable id pairs: the adapter it writes is a PEFT
 * adapter that brm score and brm eval-prefs load, and eval-prefs on the held-out pairs reproduces the
 * trainer's last report; bad input and bad usage fail with one line naming the cause, writing nothing.
 */
class CliTrainTest {
    @TempDir
    Path tmp;

    private static final String MODEL = Fixtures.dir("gpt_neox_parallel").toString();

    /** n id pairs whose chosen side ends in token 5 and rejected side in 9 (separable through the last token). */
    static List<String> pairLines(int n, long seed) {
        Random random = new Random(seed);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] c = random.ints(3 + random.nextInt(6), 10, 90).toArray(), r = random.ints(3 + random.nextInt(6), 10, 90).toArray();
            c[c.length - 1] = 5;
            r[r.length - 1] = 9;
            var line = Jsonl.JSON.createObjectNode();
            line.set("chosen_ids", Jsonl.JSON.valueToTree(c));
            line.set("rejected_ids", Jsonl.JSON.valueToTree(r));
            lines.add(line.toString());
        }
        return lines;
    }

    @Test
    void trainsAPeftAdapterThatScoreAndEvalPrefsLoad() throws IOException {
        Path data = tmp.resolve("train.jsonl"), eval = tmp.resolve("eval.jsonl"), out = tmp.resolve("adapter"), metrics = tmp.resolve("m.json");
        Files.write(data, pairLines(48, 1));
        Files.write(eval, pairLines(16, 2));
        var r = Cli.run("train", "--model", MODEL, "--data", data.toString(), "--eval-data", eval.toString(), "--out", out.toString(),
                "--epochs", "4", "--lr", "2e-2", "--batch-size", "8", "--targets", "query_key_value,dense_4h_to_h", "--threads", "1");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("step 24/24"), r.err());
        JsonNode config = Jsonl.JSON.readTree(out.resolve(PeftAdapter.CONFIG).toFile());
        assertEquals("LORA", config.get("peft_type").asText());
        assertEquals("SEQ_CLS", config.get("task_type").asText());
        assertEquals("[\"query_key_value\",\"dense_4h_to_h\"]", config.get("target_modules").toString());
        assertEquals("[\"score\"]", config.get("modules_to_save").toString());
        List<String> log = Files.readAllLines(out.resolve(Trainer.LOG));
        assertEquals(4, log.size());
        JsonNode last = Jsonl.JSON.readTree(log.getLast());

        var e = Cli.run("eval-prefs", "--model", MODEL, "--adapter", out.toString(), "--data", eval.toString(), "--output", metrics.toString());
        assertEquals(0, e.status(), e.err());
        JsonNode m = Jsonl.JSON.readTree(metrics.toFile());
        assertEquals(last.get("eval_accuracy").asDouble(), m.get("accuracy").asDouble(), 1e-12);
        assertEquals(last.get("eval_nll").asDouble(), m.get("nll").asDouble(), 1e-6);
        assertTrue(m.get("accuracy").asDouble() >= 0.9, m.toString());

        Path in = tmp.resolve("in.jsonl"), scored = tmp.resolve("scored.jsonl");
        Files.writeString(in, "{\"input_ids\": [11, 12, 13, 5]}\n{\"input_ids\": [11, 12, 13, 9]}\n");
        var s = Cli.run("score", "--model", MODEL, "--adapter", out.toString(), "--input", in.toString(), "--output", scored.toString());
        assertEquals(0, s.status(), s.err());
        List<String> rewards = Files.readAllLines(scored);
        assertTrue(Jsonl.JSON.readTree(rewards.get(0)).get("reward").asDouble() > Jsonl.JSON.readTree(rewards.get(1)).get("reward").asDouble(),
                "the trained head prefers the chosen ending: " + rewards);
    }

    private void fails(int status, String expected, String... args) {
        var r = Cli.run(args);
        assertEquals(status, r.status(), String.join(" ", args) + " -> " + r.err() + r.out());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
        assertFalse(r.err().contains("Exception"), r.err());
    }

    @Test
    void badInputAndUsageAreNamed() throws IOException {
        Path good = tmp.resolve("good.jsonl"), out = tmp.resolve("out");
        Files.write(good, pairLines(8, 3));
        String[] base = {"train", "--model", MODEL, "--out", out.toString(), "--threads", "1", "--data"};
        Path same = tmp.resolve("same.jsonl");
        Files.writeString(same, pairLines(1, 4).getFirst() + "\n{\"chosen_ids\": [1, 2], \"rejected_ids\": [1, 2]}\n");
        fails(1, same + ":2: chosen and rejected are the same sequence", cat(base, same.toString()));
        Path missing = tmp.resolve("missing.jsonl");
        Files.writeString(missing, "{\"prompt\": \"a\", \"chosen\": \"b\"}\n");
        fails(1, missing + ":1: missing field \"rejected\"", cat(base, missing.toString()));
        Path empty = tmp.resolve("empty.jsonl");
        Files.writeString(empty, "{\"prompt\": \"a\", \"chosen\": \"\", \"rejected\": \"b\"}\n");
        fails(1, empty + ":1: \"chosen\" is empty", cat(base, empty.toString()));
        Path noMargin = tmp.resolve("nomargin.jsonl");
        Files.write(noMargin, pairLines(2, 5));
        fails(1, noMargin + ":1: no \"margin\" field", cat(cat(base, noMargin.toString()), "--margin"));
        fails(1, "LoRA target \"mlp.nope\" names no linear layer of this gpt_neox model", cat(cat(base, good.toString()), "--targets", "mlp.nope"));
        fails(2, "--lora-r must be a positive integer, got '0'", cat(cat(base, good.toString()), "--lora-r", "0"));
        fails(2, "--lr must be a number > 0.0, got '-1'", cat(cat(base, good.toString()), "--lr", "-1"));
        fails(1, out + ": no checkpoint.safetensors to resume from", cat(cat(base, good.toString()), "--resume"));
        assertFalse(Files.exists(out.resolve(PeftAdapter.WEIGHTS)), "nothing was trained");
        assertEquals(0, Cli.run(cat(cat(base, good.toString()), "--epochs", "1")).status());
        fails(1, out + ": already holds a training run; pass --resume", cat(base, good.toString()));
    }

    private static String[] cat(String[] a, String... b) {
        String[] all = new String[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
