package brm.realmodels;

import brm.backbone.RandomCheckpoint;
import brm.backbone.RandomCheckpoint.NeoXShape;
import brm.io.DataFolder;
import brm.io.Jsonl;
import brm.reward.Fixtures;
import brm.tokenize.HfReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command line on real tokenization: a small random GPT-NeoX model carrying the real Pythia (GPT-NeoX-20B)
 * tokenizer, fed real AlpacaEval / AlpacaFarm text. Text lines and pre-tokenized lines holding the ids Hugging Face
 * tokenizers (through DJL) gives the same text must tokenize to those ids and score identically, with and without the
 * AlpacaFarm template and eos; truncation keeps the special tokens and the eos; and the PyTorch fixtures score their
 * PEFT adapters' reference rewards through {@code brm score --adapter}.
 */
class CliRoundTripTest {
    private static final int EOS = 0;

    @TempDir
    static Path shared;
    private static Path neox, bert;

    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    /** neox: a random 2-layer GPT-NeoX over Pythia's vocabulary; bert: a config and MiniLM's WordPiece tokenizer, enough for tokenize. */
    @BeforeAll
    static void models() throws IOException {
        neox = shared.resolve("neox");
        RandomCheckpoint.gptNeoX(neox, new NeoXShape(50304, 32, 2, 4, 64, 0.25, 2048), 20240217);
        Files.copy(DataFolder.require("gpt-neox-20b-tokenizer", "20B_tokenizer.json", "huggingface.co/EleutherAI/gpt-neox-20b"),
                neox.resolve("tokenizer.json"));

        bert = shared.resolve("bert");
        Files.createDirectories(bert);
        Files.writeString(bert.resolve("config.json"), """
                {"model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 1,
                 "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 512}""");
        try (InputStream in = CliRoundTripTest.class.getResourceAsStream("/all-minilm-l6-v2-tokenizer.json")) {
            Files.copy(in, bert.resolve("tokenizer.json"));
        }
    }

    @Test
    void textAndPreTokenizedLinesTokenizeAndScoreAlike() throws IOException {
        List<RealTexts.Example> examples = RealTexts.alpacaEval(random, 5, 2000);
        List<String> texts = examples.stream().map(e -> e.instruction() + e.output()).toList();
        checkRoundTrip(examples, texts, false);
    }

    @Test
    void alpacaTemplateWithEosTokenizesAndScoresAlike() throws IOException {
        List<RealTexts.Example> examples = new ArrayList<>(RealTexts.alpacaEval(random, 3, 2000));
        examples.addAll(RealTexts.alpacaFarmWithInput().subList(0, 2));
        List<String> texts = examples.stream().map(RealTexts::alpacaText).toList();
        checkRoundTrip(examples, texts, true);
    }

    /**
     * For each example a text line and, elsewhere in the file, an input_ids line with DJL's ids of its text (+ eos):
     * brm tokenize gives DJL's ids for both, and brm score (batches of 3, so each pair is batched with other lines)
     * gives both the same reward.
     */
    private void checkRoundTrip(List<RealTexts.Example> examples, List<String> texts, boolean alpacaEos) throws IOException {
        List<int[]> expected = new ArrayList<>();
        try (HfReference hf = HfReference.load(neox.resolve("tokenizer.json"))) {
            for (String text : texts) {
                int[] ids = hf.encode(text, true);
                expected.add(alpacaEos ? append(ids, EOS) : ids);
            }
        }
        List<ObjectNode> lines = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            RealTexts.Example e = examples.get(i);
            ObjectNode text = Jsonl.JSON.createObjectNode().put("id", "text-" + i).put("prompt", e.instruction()).put("response", e.output());
            if (!e.input().isEmpty()) text.put("input", e.input());
            lines.add(text);
        }
        for (int i = examples.size() - 1; i >= 0; i--) lines.add(idsLine("ids-" + i, expected.get(i)));
        Path in = write(tmp.resolve("in.jsonl"), lines);
        List<String> flags = alpacaEos ? List.of("--template", "alpaca", "--append-eos") : List.of();

        Map<String, JsonNode> tokenized = run("tokenize", neox, in, flags);
        Map<String, JsonNode> scored = run("score", neox, in, concat(flags, "--batch-size", "3", "--threads", "2"));
        List<Float> rewards = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            assertArrayEquals(expected.get(i), ids(tokenized.get("text-" + i)), "tokenize text-" + i + " (seed " + seed + ")");
            assertArrayEquals(expected.get(i), ids(tokenized.get("ids-" + i)), "tokenize ids-" + i);
            float reward = scored.get("text-" + i).get("reward").floatValue();
            assertEquals(reward, scored.get("ids-" + i).get("reward").floatValue(), 0f, "reward of text-" + i + " and ids-" + i);
            rewards.add(reward);
        }
        assertTrue(rewards.stream().distinct().count() > 1, "every line scored the same: " + rewards);
        System.out.printf("CLI %s: %d text/ids pairs of %s tokens, identical tokenize ids and rewards%n",
                alpacaEos ? "--template alpaca --append-eos" : "--template none", examples.size(),
                expected.stream().map(a -> a.length).toList());
    }

    /** Over --max-length, --truncate cuts the text at one end and keeps BERT's [CLS]/[SEP] and the appended eos. */
    @Test
    void truncationKeepsSpecialTokensAndEos() throws IOException {
        // a random answer of at least 200 characters: dozens of tokens, so that --max-length 12 always cuts it
        String text = RealTexts.alpacaEval(random, 40, 2000).stream().map(RealTexts.Example::output).filter(t -> t.length() >= 200)
                .findFirst().orElseThrow();
        int max = 12;
        int[] neoxText, bertText;
        try (HfReference hf = HfReference.load(neox.resolve("tokenizer.json"))) {
            neoxText = hf.encode(text, false);
        }
        try (HfReference hf = HfReference.load(bert.resolve("tokenizer.json"))) {
            bertText = hf.encode(text, false);
            int[] withSpecials = hf.encode(text, true);
            assertEquals(101, withSpecials[0]);
            assertEquals(102, withSpecials[withSpecials.length - 1]);
        }
        assertTrue(neoxText.length > max && bertText.length > max, "text too short: " + text);
        int[] rawIds = random.ints(max + 5, 0, 50304).toArray();
        Path in = write(tmp.resolve("long.jsonl"), List.of(
                Jsonl.JSON.createObjectNode().put("id", "text").put("prompt", "").put("response", text), idsLine("raw", rawIds)));

        for (String side : List.of("left", "right")) {
            boolean right = side.equals("right");
            var neoxOut = run("tokenize", neox, in, List.of("--append-eos", "--max-length", "" + max, "--truncate", side));
            assertArrayEquals(append(end(neoxText, max - 1, right), EOS), ids(neoxOut.get("text")), "gpt-neox --truncate " + side);
            assertArrayEquals(end(rawIds, max, right), ids(neoxOut.get("raw")), "input_ids are cut as given, --truncate " + side);

            Path textOnly = write(tmp.resolve("bert.jsonl"), List.of(Jsonl.JSON.createObjectNode().put("id", "text").put("prompt", text).put("response", "")));
            int[] bertIds = ids(run("tokenize", bert, textOnly, List.of("--max-length", "" + max, "--truncate", side)).get("text"));
            assertArrayEquals(append(prepend(101, end(bertText, max - 2, right)), 102), bertIds, "bert --truncate " + side);

            // the truncated text line scores as its ids do
            Path pair = write(tmp.resolve("pair.jsonl"), List.of(Jsonl.JSON.createObjectNode().put("id", "text").put("prompt", "").put("response", text),
                    idsLine("ids", ids(neoxOut.get("text")))));
            var scored = run("score", neox, pair, List.of("--append-eos", "--max-length", "" + max, "--truncate", side, "--threads", "2"));
            assertEquals(scored.get("ids").get("reward").floatValue(), scored.get("text").get("reward").floatValue(), 0f, side);
        }
    }

    /** The PyTorch fixtures through the CLI: input_ids lines, brm score with and without --adapter, against PEFT's rewards. */
    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "llama_tied", "bert_mean", "gpt_neox_parallel"})
    void fixtureAdaptersScoreTheirReferenceRewards(String fixture) throws IOException {
        JsonNode expected = Fixtures.expected(fixture);
        List<int[]> sequences = Fixtures.sequences(expected);
        List<ObjectNode> lines = new ArrayList<>();
        for (int i = 0; i < sequences.size(); i++) lines.add(idsLine("seq-" + i, sequences.get(i)));
        Path in = write(tmp.resolve("fixture.jsonl"), lines), dir = Fixtures.dir(fixture);

        float[] withAdapter = rewards(run("score", dir, in, List.of("--adapter", dir.resolve("adapter").toString(), "--batch-size", "2")), sequences.size());
        float[] base = rewards(run("score", dir, in, List.of()), sequences.size());
        double adapterError = Fixtures.maxRelError(withAdapter, Fixtures.flat(expected.get("rewards_with_adapter")), 1);
        double baseError = Fixtures.maxRelError(base, Fixtures.flat(expected.get("rewards")), 1);
        System.out.printf("CLI score %s: max rel error with adapter %.2e, without %.2e%n", fixture, adapterError, baseError);
        assertTrue(adapterError < 1e-4, fixture + " with adapter: " + adapterError);
        assertTrue(baseError < 1e-4, fixture + " without adapter: " + baseError);
        assertNotEquals(Arrays.toString(base), Arrays.toString(withAdapter));
    }

    /** Runs brm command on model with --input in; returns the output lines by id. */
    private Map<String, JsonNode> run(String command, Path model, Path in, List<String> flags) {
        Path out = tmp.resolve(command + "-out.jsonl");
        List<String> args = new ArrayList<>(List.of(command, "--model", model.toString(), "--input", in.toString(), "--output", out.toString()));
        args.addAll(flags);
        Cli.Result r = Cli.run(args.toArray(String[]::new));
        assertEquals(0, r.status(), "brm " + String.join(" ", args) + ": " + r.err());
        Map<String, JsonNode> byId = new HashMap<>();
        for (Jsonl.Line l : Jsonl.read(out)) byId.put(l.value().get("id").asText(), l.value());
        return byId;
    }

    private static float[] rewards(Map<String, JsonNode> scored, int n) {
        float[] r = new float[n];
        for (int i = 0; i < n; i++) r[i] = scored.get("seq-" + i).get("reward").floatValue();
        return r;
    }

    private static ObjectNode idsLine(String id, int[] ids) {
        ObjectNode line = Jsonl.JSON.createObjectNode().put("id", id);
        var array = line.putArray("input_ids");
        for (int v : ids) array.add(v);
        return line;
    }

    private static int[] ids(JsonNode line) {
        JsonNode a = line.get("input_ids");
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = a.get(i).intValue();
        return ids;
    }

    private static Path write(Path file, List<ObjectNode> lines) throws IOException {
        StringBuilder b = new StringBuilder();
        for (ObjectNode l : lines) b.append(Jsonl.JSON.writeValueAsString(l)).append('\n');
        Files.writeString(file, b);
        return file;
    }

    /** The first (right) or last (left) n ids. */
    private static int[] end(int[] ids, int n, boolean first) {
        return first ? Arrays.copyOf(ids, n) : Arrays.copyOfRange(ids, ids.length - n, ids.length);
    }

    private static int[] append(int[] ids, int id) {
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = id;
        return out;
    }

    private static int[] prepend(int id, int[] ids) {
        int[] out = new int[ids.length + 1];
        out[0] = id;
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    private static List<String> concat(List<String> a, String... b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(List.of(b));
        return out;
    }
}
