package brm.realmodels;

import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm generate on stories260K through {@code Main.run}: the output format, greedy text, determinism across
 * --batch-size and --threads, stop ids, and bad prompt files (exit 1, one stderr line naming file:line, no output).
 */
class CliGenerateTest {
    @TempDir
    static Path shared;
    private static Path model;

    @TempDir
    Path tmp;

    @BeforeAll
    static void model() {
        model = Stories260KGenerateTest.importModel(shared.resolve("stories260K"));
    }

    private Path prompts(String... lines) throws IOException {
        Path p = tmp.resolve("prompts.jsonl");
        Files.writeString(p, String.join("\n", lines) + "\n");
        return p;
    }

    private Cli.Result generate(Path prompts, Path out, String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("generate", "--model", model.toString(), "--prompts", prompts.toString(),
                "--output", out.toString()));
        args.addAll(List.of(extra));
        return Cli.run(args.toArray(String[]::new));
    }

    private static int[] ids(JsonNode array) {
        return IntStream.range(0, array.size()).map(i -> array.get(i).asInt()).toArray();
    }

    @Test
    void samplesLinesAreDeterministicAcrossBatchSizeAndThreads() throws IOException {
        Path in = prompts("{\"id\": \"once\", \"prompt\": \"Once upon a time\"}", "{\"id\": 7, \"prompt_ids\": [1, 403, 407]}",
                "{\"id\": \"dog\", \"prompt\": \"The dog\"}");
        Path a = tmp.resolve("a.jsonl"), b = tmp.resolve("b.jsonl");
        String[] sampling = {"--n", "3", "--max-new-tokens", "30", "--temperature", "0.8", "--top-k", "40", "--top-p", "0.9"};
        Cli.Result r = generate(in, a, concat(sampling, "--seed", "5", "--batch-size", "1", "--threads", "1"));
        assertEquals(0, r.status(), r.err());
        assertEquals(0, generate(in, b, concat(sampling, "--seed", "5", "--batch-size", "4", "--threads", "2")).status());
        assertEquals(Files.readString(a), Files.readString(b), "output depends on --batch-size / --threads");
        Path c = tmp.resolve("c.jsonl");
        assertEquals(0, generate(in, c, concat(sampling, "--seed", "6")).status());
        assertNotEquals(Files.readString(a), Files.readString(c), "another seed, other samples");

        List<Jsonl.Line> lines = Jsonl.read(a);
        assertEquals(9, lines.size());
        for (int i = 0; i < 9; i++) {
            JsonNode v = lines.get(i).value();
            assertEquals(List.of("prompt_id", "sample_id", "prompt", "response", "response_ids", "logprob"), iterable(v));
            assertEquals(i % 3, v.get("sample_id").asInt());
            assertEquals(List.of("\"once\"", "7", "\"dog\"").get(i / 3), v.get("prompt_id").toString(), "prompt_id as given");
            int[] response = ids(v.get("response_ids"));
            assertTrue(response.length >= 1 && response.length <= 30);
            assertTrue(response.length == 30 || response[response.length - 1] == 2, "stops at eos or after 30 tokens");
            double logprob = v.get("logprob").asDouble();
            assertTrue(logprob < 0 && logprob > -30 * Math.log(512) * 3, "logprob " + logprob);
            assertFalse(v.get("response").asText().isEmpty());
        }
        assertEquals("Once upon a time", lines.get(0).value().get("prompt").asText());
        assertEquals("Once upon", lines.get(3).value().get("prompt").asText(), "prompt_ids are decoded, BOS dropped");
    }

    @Test
    void greedyContinuesTheStoryAsTheSourceForwardDoes() throws IOException {
        Path in = prompts("{\"id\": 1, \"prompt\": \"Once upon a time\"}"), out = tmp.resolve("out.jsonl");
        Cli.Result r = generate(in, out, "--n", "2", "--max-new-tokens", "20", "--temperature", "0");
        assertEquals(0, r.status(), r.err());
        List<Jsonl.Line> lines = Jsonl.read(out);
        int[] greedy = Stories260KGenerateTest.GREEDY;
        for (Jsonl.Line l : lines) {
            assertArrayEquals(Arrays.copyOfRange(greedy, 4, 24), ids(l.value().get("response_ids")), "BOS + \"Once upon a time\" is BOS + the first 4 greedy ids");
            assertEquals(", there was a little girl named Lily. She loved to play outsid", l.value().get("response").asText());
        }
    }

    /** llama2.c stories end with BOS (id 1), not eos: --stop-ids 1 ends samples there, the stop id last in response_ids, not in the text. */
    @Test
    void stopIdsEndSamples() throws IOException {
        Path in = prompts("{\"id\": \"s\", \"prompt_ids\": [1]}"), out = tmp.resolve("out.jsonl");
        Cli.Result r = generate(in, out, "--n", "6", "--max-new-tokens", "400", "--stop-ids", "1", "--seed", "1");
        assertEquals(0, r.status(), r.err());
        int stopped = 0;
        for (Jsonl.Line l : Jsonl.read(out)) {
            int[] response = ids(l.value().get("response_ids"));
            for (int t = 0; t < response.length - 1; t++) assertNotEquals(1, response[t]);
            if (response[response.length - 1] == 1) {
                stopped++;
                assertFalse(l.value().get("response").asText().contains("<s>"));
            } else assertEquals(400, response.length);
        }
        assertTrue(stopped >= 2, "samples stopped at BOS: " + stopped);
    }

    @Test
    void badPromptFilesNameTheLine() throws IOException {
        String good = "{\"id\": \"g\", \"prompt\": \"Once\"}";
        String longIds = IntStream.range(0, 500).mapToObj(i -> "300").collect(Collectors.joining(","));
        failsOnLine(prompts(""), null, "no prompts");
        failsOnLine(prompts(good, "{\"id\": \"x\", \"prompt\": \"a\""), 2, "malformed JSON");
        failsOnLine(prompts(good, "{\"prompt\": \"no id\"}"), 2, "missing field \"id\"");
        failsOnLine(prompts(good, good.replace("\"g\"", "\"h\""), "{\"id\": \"p\"}"), 3, "missing field \"prompt\"");
        failsOnLine(prompts("{\"id\": 1, \"prompt_ids\": [1, 512]}"), 1, "prompt_ids[1] = 512 is outside the vocabulary [0, 512)");
        failsOnLine(prompts(good, "{\"id\": 2, \"prompt_ids\": [1, \"a\"]}"), 2, "is not an integer token id");
        failsOnLine(prompts(good, "{\"id\": 2, \"prompt_ids\": []}"), 2, "non-empty array");
        failsOnLine(prompts(good, good), 2, "id \"g\" is already used on line 1");
        failsOnLine(prompts(good, "{\"id\": 3, \"prompt_ids\": [" + longIds + "]}"), 2, "500 prompt tokens + --max-new-tokens 16 exceed max_position_embeddings 512");
    }

    private void failsOnLine(Path in, Integer line, String message) {
        Path out = tmp.resolve("out.jsonl");
        Cli.Result r = generate(in, out, "--n", "2", "--max-new-tokens", "16");
        assertEquals(1, r.status(), r.err());
        List<String> err = r.errLines().stream().filter(l -> !l.startsWith("WARNING")).toList();
        assertEquals(1, err.size(), r.err());
        assertTrue(err.getFirst().contains(in + (line == null ? "" : ":" + line + ":")), err.getFirst());
        assertTrue(err.getFirst().contains(message), err.getFirst());
        assertFalse(Files.exists(out));
    }

    private static List<String> iterable(JsonNode v) {
        List<String> names = new java.util.ArrayList<>();
        v.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
