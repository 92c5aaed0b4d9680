package brm.realmodels;

import brm.backbone.RandomCheckpoint;
import brm.backbone.RandomCheckpoint.NeoXShape;
import brm.io.DataFolder;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.io.SafetensorsWriter;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad input to the command line, run through {@code Main.run}: a failure exits 1 with one stderr line that names the
 * file and the line or tensor, no stack trace, and no output file (not even a partial or temporary one, although
 * earlier lines were already scored); bad usage exits 2. The model is a small random GPT-NeoX with the real Pythia
 * tokenizer and 64 positions.
 */
class CliBadInputTest {
    private static final int VOCAB = 50304, POSITIONS = 64;

    @TempDir
    static Path shared;
    private static Path model;

    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    @BeforeAll
    static void model() throws IOException {
        model = shared.resolve("neox");
        RandomCheckpoint.gptNeoX(model, new NeoXShape(VOCAB, 16, 1, 2, 32, 0.25, POSITIONS), 7);
        Files.copy(DataFolder.require("gpt-neox-20b-tokenizer", "20B_tokenizer.json", "huggingface.co/EleutherAI/gpt-neox-20b"),
                model.resolve("tokenizer.json"));
    }

    /** Without the spark module on the classpath (the core build), spark-score says how to build it, in one line. */
    @Test
    void sparkScoreWithoutTheSparkModule() throws IOException {
        Path in = tmp.resolve("in.jsonl");
        Files.write(in, List.of(good()));
        var r = Cli.run("spark-score", "--master", "local[1]", "--model", model.toString(), "--input", in.toString(), "--output", tmp.resolve("out").toString());
        assertEquals(1, r.status());
        assertEquals(List.of("brm spark-score: the Spark module is not built; build it with: mvn -B -ntp -Pspark -pl spark -am install -DskipTests"), r.errLines());
    }

    @Test
    void malformedJsonLine() throws IOException {
        failsOnLine(3, "malformed JSON", line(good(), good(), "{\"id\": 3, \"prompt\": \"a\""));
    }

    @Test
    void missingField() throws IOException {
        failsOnLine(2, "missing field \"response\"", line(good(), "{\"id\": 2, \"prompt\": \"no response\"}", good()));
    }

    @Test
    void nonUtf8Line() throws IOException {
        byte[] bad = "{\"prompt\": \"caf\u00ff\", \"response\": \"x\"}\n".getBytes(StandardCharsets.ISO_8859_1);
        byte[] first = line(good()), all = new byte[first.length + bad.length];
        System.arraycopy(first, 0, all, 0, first.length);
        System.arraycopy(bad, 0, all, first.length, bad.length);
        failsOnLine(2, "not valid UTF-8", all);
    }

    @Test
    void tokenIdOutsideTheVocabulary() throws IOException {
        failsOnLine(2, "token id " + VOCAB + " is outside the vocabulary", line(good(), "{\"input_ids\": [5, 17, " + VOCAB + "]}"));
        failsOnLine(2, "token id -1 is outside the vocabulary", line(good(), "{\"input_ids\": [-1]}"));
    }

    /** Under the default --truncate error, a line past the model's 64 positions; text and input_ids alike. */
    @Test
    void overLongLine() throws IOException {
        String text = RealTexts.firstTinyStory();
        failsOnLine(2, "longer than --max-length " + POSITIONS, line(good(), "{\"prompt\": \"\", \"response\": " + json(text) + "}"));
        String ids = random.ints(POSITIONS + 1, 0, VOCAB).mapToObj(Integer::toString).collect(Collectors.joining(","));
        failsOnLine(2, (POSITIONS + 1) + " tokens, longer than", line(good(), "{\"input_ids\": [" + ids + "]}"));
    }

    @Test
    void truncatedSafetensors() throws IOException {
        Path dir = copyModel();
        byte[] bytes = Files.readAllBytes(dir.resolve("model.safetensors"));
        Files.write(dir.resolve("model.safetensors"), Arrays.copyOf(bytes, bytes.length - 1 - random.nextInt(1000)));
        failsToLoad(dir, dir.resolve("model.safetensors").toString(), "data region");
    }

    @Test
    void missingTensor() throws IOException {
        String tensor = "gpt_neox.layers.0.mlp.dense_4h_to_h.bias";
        Path dir = copyModelWithout(tensor);
        failsToLoad(dir, "missing tensor " + tensor);
    }

    @Test
    void unknownModelType() throws IOException {
        Path dir = copyModel();
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"gpt_neox\"", "\"mamba\""));
        failsToLoad(dir, config.toString(), "model_type mamba is not supported");
    }

    /** Without score.weight a model scores only with --init-head. */
    @Test
    void modelWithoutHead() throws IOException {
        Path dir = copyModelWithout("score.weight");
        failsToLoad(dir, dir.toString(), "has no score.weight", "--init-head");
        Path in = input(line(good(), good()));
        Cli.Result r = Cli.run("score", "--model", dir.toString(), "--input", in.toString(), "--output", tmp.resolve("out.jsonl").toString(),
                "--init-head", "7");
        assertEquals(0, r.status(), r.err());
        assertEquals(2, Files.readAllLines(tmp.resolve("out.jsonl")).size());
    }

    @Test
    void usageErrorsExitTwo() throws IOException {
        Path in = input(line(good())), out = tmp.resolve("out.jsonl");
        List<String> io = List.of("--model", model.toString(), "--input", in.toString(), "--output", out.toString());
        Map<String, List<String>> cases = new LinkedHashMap<>();
        cases.put("unknown command", List.of("grade"));
        cases.put("missing --output", List.of("score", "--model", model.toString(), "--input", in.toString()));
        cases.put("unknown option", with(io, "score", "--frobnicate"));
        cases.put("extra argument", with(io, "score", "extra"));
        cases.put("--threads 0", with(io, "score", "--threads", "0"));
        cases.put("--batch-size many", with(io, "score", "--batch-size", "many"));
        cases.put("--max-length 0", with(io, "tokenize", "--max-length", "0"));
        cases.put("--init-head x", with(io, "score", "--init-head", "x"));
        cases.put("--truncate sideways", with(io, "score", "--truncate", "sideways"));
        for (var c : cases.entrySet()) {
            Cli.Result r = Cli.run(c.getValue().toArray(String[]::new));
            assertEquals(2, r.status(), c.getKey() + ": " + r.err());
            assertEquals(1, r.errLines().size(), c.getKey() + ": " + r.err());
            assertNoStackTrace(r, c.getKey());
            assertFalse(Files.exists(out), c.getKey() + " wrote " + out);
        }
        Cli.Result bare = Cli.run();
        assertEquals(2, bare.status());
        assertTrue(bare.out().contains("usage: brm <command>") && bare.err().isEmpty(), bare.out() + bare.err());
    }

    /** score and tokenize of this input (one line scored per batch) fail on line n of it. */
    private void failsOnLine(int n, String what, byte[] jsonl) throws IOException {
        Path in = input(jsonl);
        fails("score", model, in, List.of("--batch-size", "1"), in + ":" + n + ": ", what);
        fails("tokenize", model, in, List.of(), in + ":" + n + ": ", what);
        Files.delete(in);
    }

    /** score of a good input fails while loading dir. */
    private void failsToLoad(Path dir, String... fragments) throws IOException {
        Path in = input(line(good()));
        fails("score", dir, in, List.of(), fragments);
        Files.delete(in);
    }

    private void fails(String command, Path dir, Path in, List<String> extra, String... fragments) throws IOException {
        Set<String> before = names(tmp);
        List<String> args = new ArrayList<>(List.of(command, "--model", dir.toString(), "--input", in.toString(),
                "--output", tmp.resolve("out.jsonl").toString()));
        args.addAll(extra);
        Cli.Result r = Cli.run(args.toArray(String[]::new));
        String where = String.join(" ", args) + " (seed " + seed + ")";
        assertEquals(1, r.status(), where + ": " + r.err());
        assertEquals(1, r.errLines().size(), where + ": " + r.err());
        String message = r.errLines().getFirst();
        assertTrue(message.startsWith("brm " + command + ": "), message);
        for (String f : fragments) assertTrue(message.contains(f), where + ": '" + message + "' lacks '" + f + "'");
        assertNoStackTrace(r, where);
        assertEquals(before, names(tmp), where + " left files behind");
    }

    private static void assertNoStackTrace(Cli.Result r, String where) {
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception") || r.err().contains("internal error"), where + ": " + r.err());
    }

    /** A good text line: a random real instruction and answer. */
    private String good() {
        RealTexts.Example e = RealTexts.alpacaEval(random, 1, 150).getFirst();
        return "{\"prompt\": " + json(e.instruction()) + ", \"response\": " + json(e.output()) + "}";
    }

    private static String json(String s) {
        try {
            return Jsonl.JSON.writeValueAsString(s);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] line(String... lines) {
        return (String.join("\n", lines) + "\n").getBytes(StandardCharsets.UTF_8);
    }

    private Path input(byte[] jsonl) throws IOException {
        return Files.write(tmp.resolve("in.jsonl"), jsonl);
    }

    private Path copyModel() throws IOException {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(model)) {
            for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        return dir;
    }

    /** A copy of the model whose model.safetensors lacks one tensor. */
    private Path copyModelWithout(String tensor) throws IOException {
        Path dir = copyModel();
        Map<String, SafetensorsWriter.Tensor> kept = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(model.resolve("model.safetensors"))) {
            assertTrue(f.contains(tensor), tensor);
            for (var t : f.tensors().values())
                if (!t.name().equals(tensor)) kept.put(t.name(), new SafetensorsWriter.Tensor(f.floats(t), t.shape()));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), kept, Map.of("format", "pt"));
        return dir;
    }

    private static List<String> with(List<String> io, String command, String... extra) {
        List<String> args = new ArrayList<>(List.of(command));
        args.addAll(io);
        args.addAll(List.of(extra));
        return args;
    }

    private static Set<String> names(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).collect(Collectors.toSet());
        }
    }
}
