package brm.realmodels;

import brm.bon.EmbeddingGold;
import brm.imports.onnx.LangchainModelsTest;
import brm.imports.onnx.OnnxImporter;
import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm gold on the real bge-small-en-v1.5 (imported from its langchain4j jar) and TinyStories sentences: every gold
 * field must equal the cosines computed here from brm embed's normalised embeddings of the same texts, with prompts
 * repeated across batches (the prompt cache) and weights drawn at random; the default descriptions as responses must
 * get opposite sentiments. Bad input exits 1 with one stderr line naming file:line, and writes nothing.
 */
class CliGoldTest {
    @TempDir
    static Path shared;
    private static Path bge;

    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    @BeforeAll
    static void encoder() throws Exception {
        bge = shared.resolve("bge");
        OnnxImporter.importJar(LangchainModelsTest.jarHolding(LangchainModelsTest.Model.BGE.onnx), bge, false);
    }

    @Test
    void goldIsTheCosinesOfBrmEmbed() throws IOException {
        List<String> sentences = RealTexts.tinyStorySentences();
        List<String> prompts = new ArrayList<>();
        for (int p = 0; p < 3; p++) prompts.add(sentences.get(random.nextInt(sentences.size())));
        List<String> responses = new ArrayList<>(List.of(EmbeddingGold.POSITIVE, EmbeddingGold.NEGATIVE));
        while (responses.size() < 11) responses.add(" " + sentences.get(random.nextInt(sentences.size())));
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < responses.size(); i++) {
            ObjectNode o = Jsonl.JSON.createObjectNode().put("prompt_id", i % 3).put("sample_id", i / 3)
                    .put("prompt", prompts.get(i % 3)).put("response", responses.get(i));
            o.putArray("response_ids").add(random.nextInt(512)).add(random.nextInt(512));
            o.put("logprob", -random.nextDouble() * 20).put("extra", "kept");
            lines.add(o.toString());
        }
        Path in = tmp.resolve("samples.jsonl"), out = tmp.resolve("gold.jsonl");
        Files.write(in, lines);
        double ws = 0.5 + random.nextDouble(), wr = 0.5 + 2 * random.nextDouble();
        Cli.Result r = Cli.run("gold", "--encoder", bge.toString(), "--input", in.toString(), "--output", out.toString(),
                "--sentiment-weight", Double.toString(ws), "--relevance-weight", Double.toString(wr), "--batch-size", "2", "--threads", "2");
        assertEquals(0, r.status(), r.err());

        Map<String, double[]> e = embed(prompts, responses);
        double[] pos = e.get(EmbeddingGold.POSITIVE), neg = e.get(EmbeddingGold.NEGATIVE);
        List<Jsonl.Line> written = Jsonl.read(out);
        assertEquals(lines.size(), written.size());
        for (int i = 0; i < lines.size(); i++) {
            JsonNode v = written.get(i).value();
            ObjectNode original = (ObjectNode) Jsonl.JSON.readTree(lines.get(i));
            List<String> fields = new ArrayList<>();
            original.fieldNames().forEachRemaining(fields::add);
            fields.addAll(List.of("gold", "gold_sentiment", "gold_relevance"));
            List<String> got = new ArrayList<>();
            v.fieldNames().forEachRemaining(got::add);
            assertEquals(fields, got, "every input field kept, in order, then the gold fields");
            original.properties().forEach(f -> assertEquals(f.getValue(), v.get(f.getKey())));

            double[] resp = e.get(responses.get(i));
            double sentiment = dot(resp, pos) - dot(resp, neg), relevance = dot(resp, e.get(prompts.get(i % 3)));
            String where = String.format(Locale.ROOT, "line %d (seed %d)", i + 1, seed);
            assertEquals(sentiment, v.get("gold_sentiment").asDouble(), 1e-5, where);
            assertEquals(relevance, v.get("gold_relevance").asDouble(), 1e-5, where);
            assertEquals(ws * v.get("gold_sentiment").asDouble() + wr * v.get("gold_relevance").asDouble(), v.get("gold").asDouble(), 1e-12, where);
        }
        double happy = written.get(0).value().get("gold_sentiment").asDouble(), sad = written.get(1).value().get("gold_sentiment").asDouble();
        assertTrue(happy > 0.1, "the positive description is positive: " + happy);
        assertEquals(-happy, sad, 1e-5, "cos(pos, pos) - cos(pos, neg) = -(cos(neg, pos) - cos(neg, neg))");
    }

    /** text -> brm embed --normalize's embedding [hidden], each text alone on a line. */
    private Map<String, double[]> embed(List<String> prompts, List<String> responses) throws IOException {
        List<String> texts = new ArrayList<>(prompts);
        texts.addAll(responses);
        List<String> lines = new ArrayList<>();
        for (String t : texts) lines.add(Jsonl.JSON.createObjectNode().put("prompt", t).toString());
        Path in = tmp.resolve("texts.jsonl"), out = tmp.resolve("embeddings.jsonl");
        Files.write(in, lines);
        Cli.Result r = Cli.run("embed", "--model", bge.toString(), "--input", in.toString(), "--output", out.toString(), "--normalize", "--threads", "2");
        assertEquals(0, r.status(), r.err());
        Map<String, double[]> e = new HashMap<>();
        List<Jsonl.Line> written = Jsonl.read(out);
        for (int i = 0; i < texts.size(); i++) {
            JsonNode a = written.get(i).value().get("embedding");
            double[] v = new double[a.size()];
            for (int k = 0; k < v.length; k++) v[k] = a.get(k).asDouble();
            e.put(texts.get(i), v);
        }
        return e;
    }

    private static double dot(double[] a, double[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d += a[i] * b[i];
        return d;
    }

    @Test
    void badInputNamesFileAndLine() throws IOException {
        String good = "{\"prompt\": \"Tom had a red ball.\", \"response\": \" He gave it to his friend.\"}";
        fails(List.of(good, good, "{\"prompt\": \"Tom had a red ball.\"}"), ":3: missing field \"response\"");
        fails(List.of(good, "{\"prompt\": \"Tom\", \"response\": 7}"), ":2: \"response\" must be a string");
        fails(List.of("{\"response\": \"x\"}"), ":1: missing field \"prompt\"");
        fails(List.of(), ": no samples");
        fails(List.of("", "  "), ": no samples");
    }

    @Test
    void badUsage() throws IOException {
        Path in = tmp.resolve("in.jsonl"), out = tmp.resolve("out.jsonl");
        Files.writeString(in, "{\"prompt\": \"a\", \"response\": \"b\"}\n");
        for (String[] bad : new String[][] {{"--relevance-weight", "-1"}, {"--sentiment-weight", "x"}, {"--batch-size", "0"}}) {
            List<String> args = new ArrayList<>(List.of("gold", "--encoder", bge.toString(), "--input", in.toString(), "--output", out.toString()));
            args.addAll(List.of(bad));
            Cli.Result r = Cli.run(args.toArray(String[]::new));
            assertEquals(2, r.status(), String.join(" ", bad) + ": " + r.err());
            assertFalse(Files.exists(out));
        }
        Cli.Result r = Cli.run("gold", "--encoder", tmp.resolve("nowhere").toString(), "--input", in.toString(), "--output", out.toString());
        assertEquals(1, r.status(), r.err());
        assertEquals("brm gold: " + tmp.resolve("nowhere") + ": no such encoder directory", r.err().strip());
    }

    private void fails(List<String> lines, String message) throws IOException {
        Path in = Files.createTempFile(tmp, "samples", ".jsonl"), out = tmp.resolve("fail.jsonl");
        Files.write(in, lines);
        Cli.Result r = Cli.run("gold", "--encoder", bge.toString(), "--input", in.toString(), "--output", out.toString(), "--batch-size", "2");
        assertEquals(1, r.status(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertEquals("brm gold: " + in + message, r.errLines().getFirst());
        assertFalse(Files.exists(out));
        try (var files = Files.list(tmp)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith(".fail.jsonl")), "no temporary file left");
        }
    }
}
