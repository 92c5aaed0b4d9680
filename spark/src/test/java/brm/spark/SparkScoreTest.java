package brm.spark;

import brm.backbone.RandomCheckpoint;
import brm.backbone.RandomCheckpoint.NeoXShape;
import brm.backend.Backends;
import brm.backend.CudaBackend;
import brm.bindings.cuda.CudaLibraries;
import brm.cli.Main;
import brm.io.DataFolder;
import brm.io.Jsonl;
import brm.laplace.BayesianRewardModel.Penalty;
import brm.score.ScoreSpec;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.apache.spark.sql.functions.spark_partition_id;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * brm on a real local[2] Spark: a Dataset scored through {@link BrmSpark} (and brm spark-score) carries the
 * numbers brm score writes for the same rows: bit for bit where the batches are the same (each partition
 * against brm score on that partition's rows), to 1e-6 where they are not. A tiny random GPT-NeoX with a trained
 * LoRA adapter and its Laplace posterior scores token ids; a random GPT-NeoX with the real Pythia
 * tokenizer scores text. Each JVM loads a model once, whatever the number of partitions and tasks.
 */
class SparkScoreTest {
    private static final int VOCAB = 97;

    @TempDir
    static Path tmp;
    private static String model, adapter;
    private static SparkSession spark;

    @BeforeAll
    static void setUp() throws IOException {
        model = tmp.resolve("neox").toString();
        RandomCheckpoint.gptNeoX(Path.of(model), new NeoXShape(VOCAB, 24, 2, 2, 40, 0.5, 64), 3);
        Random random = new Random(11);
        List<String> pairs = new ArrayList<>();
        for (int i = 0; i < 32; i++)
            pairs.add("{\"chosen_ids\": " + ids(random, 3, 9) + ", \"rejected_ids\": " + ids(random, 3, 9) + "}");
        Path data = tmp.resolve("pairs.jsonl");
        Files.write(data, pairs);
        adapter = tmp.resolve("adapter").toString();
        cli("train", "--model", model, "--data", data.toString(), "--out", adapter, "--epochs", "2", "--lr", "1e-2", "--threads", "1");
        cli("laplace", "--model", model, "--adapter", adapter, "--data", data.toString(), "--threads", "1");
        spark = SparkSession.builder().master("local[2]").appName("brm-test").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", false)
                .config("spark.sql.codegen.wholeStage", false).getOrCreate(); // compiling generated code costs more than it saves on test-sized data
    }

    @AfterAll
    static void tearDown() {
        if (spark != null) spark.stop();
    }

    /** A few thousand rows over three partitions: per partition equal to brm score exactly, overall to 1e-6, one model load. */
    @Test
    void sameNumbersAsBrmScoreWithOneLoadPerJvm() throws IOException {
        Random random = new Random(3);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 3001; i++) lines.add("{\"id\": \"r" + i + "\", \"input_ids\": " + ids(random, 1, 40) + "}");
        Path in = tmp.resolve("ids.jsonl");
        Files.write(in, lines);
        ScoreSpec spec = ScoreSpec.of(model, adapter).withPenalty(1.5, Penalty.STD).withBatchSize(13);
        assertTrue(spec.posterior());
        int loads = LoadedScorers.loads();
        Dataset<Row> scored = BrmSpark.score(spark.read().json(in.toString()).repartition(3), spec, false);
        Map<Integer, List<Row>> partitions = byPartition(scored);
        assertEquals(1, LoadedScorers.loads() - loads, "one load for three partitions on two task slots");
        assertEquals(3, partitions.size());
        String[] options = {"--model", model, "--adapter", adapter, "--k", "1.5", "--batch-size", "13"};
        for (List<Row> rows : partitions.values()) assertSame(rows, brmScore(rows, options), 0);
        // brm score on the whole file, in other batches
        List<Row> all = partitions.values().stream().flatMap(List::stream).toList();
        assertEquals(lines.size(), all.size());
        List<Row> inFileOrder = sortedLike(all, lines);
        assertSame(inFileOrder, brmScore(inFileOrder, "--model", model, "--adapter", adapter, "--k", "1.5"), 1e-6);
        Dataset<Row> again = BrmSpark.score(spark.read().json(in.toString()), spec.withPenalty(0.5, Penalty.VAR), false);
        assertEquals(lines.size(), again.count());
        assertEquals(1, LoadedScorers.loads() - loads, "the penalty does not reload the model");
    }

    /** prompt/response/input text through the alpaca template, a model without posterior (reward only). */
    @Test
    void textRowsWithoutPosterior() throws IOException {
        Path text = tmp.resolve("neox-text");
        RandomCheckpoint.gptNeoX(text, new NeoXShape(50304, 16, 1, 2, 32, 0.25, 64), 5);
        Files.copy(DataFolder.require("gpt-neox-20b-tokenizer", "20B_tokenizer.json", "huggingface.co/EleutherAI/gpt-neox-20b"), text.resolve("tokenizer.json"));
        Random random = new Random(8);
        String[] words = {"the", "cat", "sat", "on", "a", "mat", "why", "is", "sky", "blue", "because", "light", "scatters", "é", "😀"};
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 301; i++) {
            ObjectNode o = Jsonl.JSON.createObjectNode().put("id", i).put("prompt", sentence(random, words, 6)).put("response", sentence(random, words, 10));
            if (i % 3 == 0) o.put("input", sentence(random, words, 4));
            lines.add(o.toString());
        }
        Path in = tmp.resolve("text.jsonl");
        Files.write(in, lines);
        ScoreSpec spec = ScoreSpec.of(text.toString(), null).withText("alpaca", true, 0, brm.batch.Truncation.LEFT).withBatchSize(5);
        Map<Integer, List<Row>> partitions = byPartition(BrmSpark.score(spark.read().json(in.toString()).repartition(2), spec, false));
        assertEquals(2, partitions.size());
        for (List<Row> rows : partitions.values())
            assertSame(rows, brmScore(rows, "--model", text.toString(), "--template", "alpaca", "--append-eos", "--truncate", "left", "--batch-size", "5"), 0);
    }

    /** A row that cannot be scored fails the job by its id, or with skipErrors keeps its place with a null reward and the reason. */
    @Test
    void badRowsFailByIdOrAreKept() throws IOException {
        Random random = new Random(5);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) lines.add("{\"id\": \"g" + i + "\", \"input_ids\": " + ids(random, 1, 20) + "}");
        Path clean = tmp.resolve("clean.jsonl"), oov = tmp.resolve("oov.jsonl"), bad = tmp.resolve("bad.jsonl");
        Files.write(clean, lines);
        List<String> withOov = new ArrayList<>(lines);
        withOov.add(17, "{\"id\": \"bad-oov\", \"input_ids\": [3, 500, 4]}");
        Files.write(oov, withOov);
        ScoreSpec spec = ScoreSpec.of(model, adapter).withBatchSize(4);
        var failed = assertThrows(Exception.class, () -> BrmSpark.score(spark.read().json(oov.toString()), spec, false).collectAsList());
        assertEquals("row id bad-oov: token id 500 is outside the vocabulary [0, 97)", SparkScoreFiles.reason(failed));

        List<String> withBad = new ArrayList<>(withOov);
        withBad.add(3, "{\"id\": \"bad-long\", \"input_ids\": " + ids(random, 70, 70) + "}");
        withBad.add(30, "{\"id\": \"bad-missing\", \"note\": \"no input_ids\"}");
        Files.write(bad, withBad);
        List<Row> kept = BrmSpark.score(spark.read().json(bad.toString()), spec, true).collectAsList();
        assertEquals(withBad.size(), kept.size());
        Map<String, String> errors = new HashMap<>();
        for (Row r : kept) if (r.isNullAt(r.fieldIndex("reward"))) errors.put(r.getAs("id"), r.getAs("error"));
        assertEquals(Map.of("bad-oov", "row id bad-oov: token id 500 is outside the vocabulary [0, 97)",
                "bad-long", "row id bad-long: 70 tokens, longer than --max-length 64 (use --truncate left|right to cut it)",
                "bad-missing", "row id bad-missing: missing field \"response\""), errors);
        Map<String, Row> good = new HashMap<>();
        for (Row r : BrmSpark.score(spark.read().json(clean.toString()), spec, true).collectAsList()) good.put(r.getAs("id"), r);
        for (int i = 0; i < kept.size(); i++) {
            Row r = kept.get(i);
            assertEquals(Jsonl.JSON.readTree(withBad.get(i)).get("id").asText(), r.getAs("id"), "row order");
            if (errors.containsKey(r.<String>getAs("id"))) continue;
            assertNull(r.getAs("error"));
            Row g = good.get(r.<String>getAs("id"));
            assertEquals(g.<Float>getAs("reward"), r.<Float>getAs("reward"), 1e-6f * Math.max(1, Math.abs(g.<Float>getAs("reward"))));
            assertEquals(g.<Double>getAs("var"), r.<Double>getAs("var"), 1e-6 * g.<Double>getAs("var"));
        }
        var missing = assertThrows(brm.BrmException.class, () -> BrmSpark.score(spark.read().json(bad.toString()).drop("input_ids"), spec, false));
        assertEquals("the input needs prompt and response columns or an input_ids column; it has id, note", missing.getMessage());
    }

    /** brm spark-score: JSONL in, Parquet or JSON out, equal to brm score on the file (one partition, same batches). */
    @Test
    void sparkScoreCommand() throws IOException {
        Random random = new Random(9);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 200; i++) lines.add("{\"id\": " + i + ", \"input_ids\": " + ids(random, 1, 30) + ", \"keep\": \"k" + i + "\"}");
        Path in = tmp.resolve("cli.jsonl"), parquet = tmp.resolve("cli-out.parquet"), json = tmp.resolve("cli-out-json");
        Files.write(in, lines);
        String[] score = {"--model", model, "--adapter", adapter, "--k", "2", "--penalty", "var", "--batch-size", "9"};
        assertEquals(0, Main.run(concat(new String[] {"spark-score", "--master", "local[2]", "--input", in.toString(), "--output", parquet.toString(), "--format", "parquet"}, score)));
        List<Row> rows = spark.read().parquet(parquet.toString()).collectAsList();
        assertEquals("k7", rows.get(7).getAs("keep"));
        assertSame(rows, brmScore(rows, score), 0);
        assertEquals(0, Main.run(concat(new String[] {"spark-score", "--master", "local[2]", "--input", in.toString(), "--output", json.toString(),
                "--format", "json", "--on-error", "skip"}, score)));
        List<Row> fromJson = spark.read().json(json.toString()).collectAsList();
        assertEquals(rows.size(), fromJson.size());
        assertEquals((float) rows.get(3).<Float>getAs("reward"), (float) (double) fromJson.get(3).<Double>getAs("reward"));
        Files.write(in, List.of("{\"id\": \"x\", \"input_ids\": [1, 2, 300]}"));
        String err = stderr(() -> assertEquals(1, Main.run(concat(new String[] {"spark-score", "--master", "local[2]", "--input", in.toString(),
                "--output", tmp.resolve("cli-fail").toString()}, score))));
        assertEquals("brm spark-score: row id x: token id 300 is outside the vocabulary [0, 97)", err.strip());
        err = stderr(() -> assertEquals(1, Main.run(concat(new String[] {"spark-score", "--master", "local[2]", "--input", in.toString(),
                "--output", parquet.toString()}, score))));
        assertTrue(err.contains("already exists"), err);
    }

    /**
     * A spec on the CUDA backend makes the executors score there (here the emulator of brm's kernels, named by
     * -Dbrm.cuda.library for the test) with the numbers brm score gives on the CPU, to FP32 rounding.
     */
    @Test
    void executorsScoreOnTheSpecsBackend() throws IOException {
        assumeTrue(Files.isRegularFile(CudaLibraries.emulator()), "no emulator library built (scripts/build-native.sh)");
        String previous = System.getProperty("brm.cuda.library");
        System.setProperty("brm.cuda.library", CudaLibraries.emulator().toString());
        try {
            Random random = new Random(21);
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < 64; i++) lines.add("{\"id\": \"c" + i + "\", \"input_ids\": " + ids(random, 1, 30) + "}");
            Path in = tmp.resolve("cuda-ids.jsonl");
            Files.write(in, lines);
            ScoreSpec spec = ScoreSpec.of(model, adapter).withBatchSize(8)
                    .withBackend(new Backends.Choice(Backends.Kind.CUDA, CudaBackend.Precision.FP32));
            int loads = LoadedScorers.loads();
            List<Row> rows = sortedLike(BrmSpark.score(spark.read().json(in.toString()).repartition(2), spec, false).collectAsList(), lines);
            assertEquals(1, LoadedScorers.loads() - loads, "another backend is another model load");
            assertSame(rows, brmScore(rows, "--model", model, "--adapter", adapter, "--backend", "cpu"), 1e-3);
        } finally {
            if (previous == null) System.clearProperty("brm.cuda.library");
            else System.setProperty("brm.cuda.library", previous);
        }
    }

    /** Rows grouped by the partition that scored them, each in its order. */
    private static Map<Integer, List<Row>> byPartition(Dataset<Row> scored) {
        Map<Integer, List<Row>> out = new TreeMap<>();
        for (Row r : scored.withColumn("pid", spark_partition_id()).collectAsList())
            out.computeIfAbsent(r.<Integer>getAs("pid"), p -> new ArrayList<>()).add(r);
        return out;
    }

    /** brm score's output lines for these rows' input columns, in the rows' order. */
    private static List<JsonNode> brmScore(List<Row> rows, String... options) throws IOException {
        Path in = Files.createTempFile(tmp, "in", ".jsonl"), out = Files.createTempFile(tmp, "out", ".jsonl");
        List<String> lines = new ArrayList<>();
        for (Row r : rows) {
            ObjectNode o = Jsonl.JSON.createObjectNode();
            for (String f : List.of("id", "prompt", "response", "input", "input_ids")) {
                if (!List.of(r.schema().fieldNames()).contains(f) || r.isNullAt(r.fieldIndex(f))) continue;
                o.set(f, f.equals("input_ids") ? Jsonl.JSON.valueToTree(r.getList(r.fieldIndex(f))) : Jsonl.JSON.valueToTree(r.get(r.fieldIndex(f))));
            }
            lines.add(o.toString());
        }
        Files.write(in, lines);
        cli(concat(new String[] {"score", "--input", in.toString(), "--output", out.toString()}, options));
        List<JsonNode> scored = new ArrayList<>();
        for (String line : Files.readAllLines(out)) scored.add(Jsonl.JSON.readTree(line));
        return scored;
    }

    /** Spark's columns against brm score's fields: exactly (tolerance 0) or to a relative tolerance. */
    private static void assertSame(List<Row> rows, List<JsonNode> expected, double tolerance) {
        assertEquals(expected.size(), rows.size());
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            JsonNode e = expected.get(i);
            assertEquals(e.get("id").asText(), String.valueOf(r.<Object>getAs("id")));
            for (String f : List.of("reward", "var", "std", "penalized")) {
                assertEquals(e.has(f), List.of(r.schema().fieldNames()).contains(f), f);
                if (!e.has(f)) continue;
                double want = f.equals("reward") ? (float) e.get(f).asDouble() : e.get(f).asDouble(), got = ((Number) r.getAs(f)).doubleValue();
                if (tolerance == 0) assertEquals(want, got, 0, f + " of row " + e.get("id"));
                else assertEquals(want, got, tolerance * Math.max(1, Math.abs(want)), f + " of row " + e.get("id"));
            }
        }
    }

    /** rows reordered to the order of the input lines (by id). */
    private static List<Row> sortedLike(List<Row> rows, List<String> lines) throws IOException {
        Map<String, Row> byId = new HashMap<>();
        for (Row r : rows) byId.put(r.getAs("id"), r);
        List<Row> out = new ArrayList<>();
        for (String line : lines) out.add(byId.get(Jsonl.JSON.readTree(line).get("id").asText()));
        return out;
    }

    private static String ids(Random random, int min, int max) {
        return Jsonl.JSON.valueToTree(random.ints(min + random.nextInt(max - min + 1), 0, VOCAB).toArray()).toString();
    }

    private static String sentence(Random random, String[] words, int n) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 1 + random.nextInt(n); i++) b.append(i == 0 ? "" : " ").append(words[random.nextInt(words.length)]);
        return b.toString();
    }

    private static void cli(String... args) {
        assertEquals(0, Main.run(args), String.join(" ", args));
    }

    private static String stderr(Runnable run) {
        PrintStream err = System.err;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        System.setErr(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            run.run();
        } finally {
            System.setErr(err);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
