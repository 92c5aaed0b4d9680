package brm.imports.llama2c;

import brm.BrmException;
import brm.io.DataFolder;
import brm.io.SafetensorsFile;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Llama2cImporterTest {
    private static final String ORIGIN = "github.com/ytmytm/llama2.c64";
    /** From stories260K/SOURCE.txt (numpy forward of the original llama2.c weights). */
    private static final int[] TOP5_AFTER_BOS = {403, 385, 410, 317, 407};
    private static final double[] TOP5_LOGITS = {17.0235, 15.4062, 13.1083, 12.7692, 12.4181};
    private static final int[] GREEDY = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
            338, 401, 396, 267, 337, 410, 408, 419, 292};

    @TempDir
    Path tmp;

    private static Path checkpoint() {
        return DataFolder.require("stories260K", "stories260K.bin", ORIGIN);
    }

    private static Path tokenizer() {
        return DataFolder.require("stories260K", "tok512.bin", ORIGIN);
    }

    @Test
    void importedStories260KReproducesLlama2cLogitsAndGreedyText() throws IOException {
        Path dir = tmp.resolve("model");
        var result = Llama2cImporter.importModel(checkpoint(), tokenizer(), dir, false);
        assertFalse(result.unchanged());
        var forward = new LlamaReferenceForward(dir);

        double[] logits = forward.lastLogits(new int[] {Llama2cTokenizer.BOS});
        int[] top5 = IntStream.range(0, logits.length).boxed()
                .sorted((a, b) -> Double.compare(logits[b], logits[a])).limit(5).mapToInt(Integer::intValue).toArray();
        assertArrayEquals(TOP5_AFTER_BOS, top5);
        for (int i = 0; i < 5; i++) assertEquals(TOP5_LOGITS[i], logits[top5[i]], 1e-3, "logit of " + top5[i]);

        int[] tokens = {Llama2cTokenizer.BOS};
        for (int step = 0; step < GREEDY.length; step++) {
            double[] next = forward.lastLogits(tokens);
            int best = 0;
            for (int v = 1; v < next.length; v++) if (next[v] > next[best]) best = v;
            tokens = Arrays.copyOf(tokens, tokens.length + 1);
            tokens[tokens.length - 1] = best;
        }
        assertArrayEquals(GREEDY, Arrays.copyOfRange(tokens, 1, tokens.length));
    }

    @Test
    void writesHuggingFaceConfigAndTiedLayout() throws IOException {
        Path dir = tmp.resolve("model");
        Llama2cImporter.importModel(checkpoint(), tokenizer(), dir, false);
        JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertEquals("llama", c.get("model_type").asText());
        assertEquals("LlamaForCausalLM", c.get("architectures").get(0).asText());
        Map<String, Integer> ints = Map.of("hidden_size", 64, "intermediate_size", 172, "num_hidden_layers", 5,
                "num_attention_heads", 8, "num_key_value_heads", 4, "vocab_size", 512, "max_position_embeddings", 512,
                "bos_token_id", 1, "eos_token_id", 2);
        ints.forEach((key, value) -> assertEquals(value, c.get(key).asInt(), key));
        assertEquals(1e-5, c.get("rms_norm_eps").asDouble());
        assertEquals(10000.0, c.get("rope_theta").asDouble());
        assertTrue(c.get("tie_word_embeddings").asBoolean());
        assertEquals("silu", c.get("hidden_act").asText());
        assertEquals("float32", c.get("torch_dtype").asText());
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", Llama2cImporter.RECORD))
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
        try (SafetensorsFile w = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            assertEquals(2 + 9 * 5, w.tensors().size());
            assertFalse(w.contains("lm_head.weight"));
        }
    }

    @Test
    void reimportingTheSameInputsChangesNothing() throws IOException {
        Path dir = tmp.resolve("model");
        Llama2cImporter.importModel(checkpoint(), tokenizer(), dir, false);
        var before = identities(dir);
        var again = Llama2cImporter.importModel(checkpoint(), tokenizer(), dir, false);
        assertTrue(again.unchanged());
        assertEquals(before, identities(dir));
    }

    @Test
    void anotherModelReplacesTheDirectoryOnlyWithForce() throws IOException {
        Path dir = tmp.resolve("model");
        Llama2cImporter.importModel(checkpoint(), tokenizer(), dir, false);
        String record = Files.readString(dir.resolve(Llama2cImporter.RECORD));
        Path other = tmp.resolve("other.bin");
        writeCheckpoint(other, new int[] {16, 24, 2, 4, 2, 512, 8}, true, new Random());

        var refused = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(other, tokenizer(), dir, false));
        assertTrue(refused.getMessage().startsWith(dir.toString()) && refused.getMessage().contains("--force"), refused.getMessage());
        assertEquals(record, Files.readString(dir.resolve(Llama2cImporter.RECORD)));

        var forced = Llama2cImporter.importModel(other, tokenizer(), dir, true);
        assertFalse(forced.unchanged());
        assertEquals(16, forced.header().dim());
        assertNotEquals(record, Files.readString(dir.resolve(Llama2cImporter.RECORD)));
        assertEquals(Set.of("model", "other.bin"), names(tmp), "no staging or replaced directory left behind");

        Path notAnImport = tmp.resolve("notes");
        Files.createDirectories(notAnImport);
        Files.writeString(notAnImport.resolve("keep.txt"), "mine");
        var foreign = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(checkpoint(), tokenizer(), notAnImport, false));
        assertTrue(foreign.getMessage().contains("not a brm import"), foreign.getMessage());
        assertEquals("mine", Files.readString(notAnImport.resolve("keep.txt")));
    }

    @Test
    void truncatedCheckpointIsRefusedAndLeavesNoDirectory() throws IOException {
        byte[] full = Files.readAllBytes(checkpoint());
        Path truncated = tmp.resolve("truncated.bin");
        Files.write(truncated, Arrays.copyOf(full, full.length - 4));
        Path dir = tmp.resolve("out").resolve("model");
        var e = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(truncated, tokenizer(), dir, false));
        assertTrue(e.getMessage().startsWith(truncated.toString()), e.getMessage());
        assertTrue(e.getMessage().contains((full.length - 4) + " bytes") && e.getMessage().contains(full.length + " bytes (with the freq_cis tables)")
                && e.getMessage().contains((full.length - 4 * 4096) + " (without)"), e.getMessage());
        assertEquals(Set.of("truncated.bin"), names(tmp));
    }

    @Test
    void badHeadersAreRefusedNamingTheFile() throws IOException {
        Map<int[], String> cases = new HashMap<>();
        cases.put(new int[] {64, 172, 5, 7, 4, 512, 512}, "n_heads 7 does not divide dim 64");
        cases.put(new int[] {64, 172, -5, 8, 4, 512, 512}, "n_layers is -5, must be positive");
        cases.put(new int[] {64, 172, 5, 8, 3, 512, 512}, "n_kv_heads 3 does not divide n_heads 8");
        cases.put(new int[] {64, 172, 5, 8, 16, 512, 512}, "n_kv_heads 16 does not divide n_heads 8");
        cases.put(new int[] {24, 172, 5, 8, 4, 512, 512}, "head size 3 (dim / n_heads) is odd");
        cases.put(new int[] {64, 172, 5, 8, 4, 0, 512}, "vocab_size is 0, must be nonzero");
        cases.put(new int[] {0x616b3432, 2, 64, 172, 5, 8, 4}, "llama2.c version-2 export");
        cases.put(new int[] {1 << 20, 1 << 20, 1, 2, 2, 2, 2}, "describes a tensor of 1099511627776 values");
        cases.put(new int[] {46340, 46340, Integer.MAX_VALUE, 2, 2, 2, 2}, "more than 2^63 bytes");
        for (var c : cases.entrySet()) {
            Path file = tmp.resolve("bad.bin");
            ByteBuffer b = ByteBuffer.allocate(28 + 64).order(ByteOrder.LITTLE_ENDIAN);
            for (int v : c.getKey()) b.putInt(v);
            Files.write(file, b.array());
            var e = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(file, tokenizer(), tmp.resolve("model"), false));
            assertTrue(e.getMessage().startsWith(file.toString()) && e.getMessage().contains(c.getValue()), e.getMessage());
        }
        Path tiny = tmp.resolve("tiny.bin");
        Files.write(tiny, new byte[10]);
        var e = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(tiny, tokenizer(), tmp.resolve("model"), false));
        assertTrue(e.getMessage().contains("10 bytes, less than the 28-byte header"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("model")));
    }

    /**
     * Fresh random untied GQA models, with and without the freq_cis tables (the classifier follows them):
     * every HF tensor is the llama2.c one, with q and k rows reordered per head.
     */
    @Test
    void untiedClassifierAndRopeRowOrderMapOntoHuggingFaceNames() throws IOException {
        for (boolean freqCis : new boolean[] {true, false}) {
            int d = 16, hidden = 24, layers = 2, heads = 4, kvHeads = 2, vocab = 512, hd = d / heads, kv = kvHeads * hd;
            Path file = tmp.resolve("untied-" + freqCis + ".bin");
            float[] w = writeCheckpoint(file, new int[] {d, hidden, layers, heads, kvHeads, -vocab, 8}, freqCis, new Random());
            Path dir = tmp.resolve("model-" + freqCis);
            var result = Llama2cImporter.importModel(file, tokenizer(), dir, false);
            assertFalse(result.header().tiedClassifier());
            assertEquals(freqCis, result.header().freqCis());
            assertFalse(new ObjectMapper().readTree(dir.resolve("config.json").toFile()).get("tie_word_embeddings").asBoolean());

            long wq = (long) vocab * d + (long) layers * d, wk = wq + (long) layers * d * d, wv = wk + (long) layers * kv * d;
            long w2 = wv + (long) layers * kv * d + (long) layers * d * d + (long) layers * d + (long) layers * hidden * d;
            long wcls = w.length - (long) vocab * d;
            try (SafetensorsFile st = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
                assertArrayEquals(slice(w, 0, vocab * d), st.floats("model.embed_tokens.weight", vocab, d));
                assertArrayEquals(slice(w, wcls, vocab * d), st.floats("lm_head.weight", vocab, d));
                assertArrayEquals(slice(w, wv + (long) kv * d, kv * d), st.floats("model.layers.1.self_attn.v_proj.weight", kv, d));
                assertArrayEquals(slice(w, w2 + (long) d * hidden, d * hidden), st.floats("model.layers.1.mlp.down_proj.weight", d, hidden));
                float[] q1 = st.floats("model.layers.1.self_attn.q_proj.weight", d, d), k0 = st.floats("model.layers.0.self_attn.k_proj.weight", kv, d);
                for (int head = 0; head < heads; head++)
                    for (int i = 0; i < hd / 2; i++)
                        for (int odd = 0; odd < 2; odd++) {
                            int hfRow = head * hd + odd * hd / 2 + i, llamaRow = head * hd + 2 * i + odd;
                            assertArrayEquals(slice(w, wq + (long) d * d + (long) llamaRow * d, d), slice(q1, hfRow * d, d), "q row " + hfRow);
                            if (head < kvHeads)
                                assertArrayEquals(slice(w, wk + (long) llamaRow * d, d), slice(k0, hfRow * d, d), "k row " + hfRow);
                        }
            }
        }
    }

    @Test
    void tokenizerThatDoesNotFitTheCheckpointIsRefused() throws IOException {
        byte[] tok = Files.readAllBytes(tokenizer());
        Path truncated = tmp.resolve("tok.bin");
        Files.write(truncated, Arrays.copyOf(tok, tok.length - 3));
        var e = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(checkpoint(), truncated, tmp.resolve("model"), false));
        assertTrue(e.getMessage().startsWith(truncated.toString()) && e.getMessage().contains("truncated llama2.c tokenizer: token 511"), e.getMessage());

        Path bigger = tmp.resolve("bigger.bin");
        writeCheckpoint(bigger, new int[] {16, 24, 1, 4, 4, 600, 8}, true, new Random());
        var mismatch = assertThrows(BrmException.class, () -> Llama2cImporter.importModel(bigger, tokenizer(), tmp.resolve("model"), false));
        assertTrue(mismatch.getMessage().contains("holds 512 tokens but the checkpoint's vocab_size is 600"), mismatch.getMessage());
        assertFalse(Files.exists(tmp.resolve("model")));
    }

    /** Writes a llama2.c v0 file with this header and fresh random weights; returns the weights. */
    private static float[] writeCheckpoint(Path file, int[] h, boolean freqCis, Random random) throws IOException {
        long d = h[0], hidden = h[1], layers = h[2], hd = d / h[3], kv = hd * h[4], vocab = Math.abs(h[5]);
        long count = vocab * d + layers * (2 * d + 2 * d * d + 2 * kv * d + 3 * hidden * d) + d
                + (freqCis ? h[6] * hd : 0) + (h[5] < 0 ? vocab * d : 0);
        float[] w = new float[(int) count];
        for (int i = 0; i < w.length; i++) w[i] = (float) random.nextGaussian();
        ByteBuffer b = ByteBuffer.allocate(28 + 4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : h) b.putInt(v);
        for (float v : w) b.putFloat(v);
        Files.write(file, b.array());
        return w;
    }

    private static float[] slice(float[] w, long from, int count) {
        return Arrays.copyOfRange(w, (int) from, (int) from + count);
    }

    /** Each file's identity (inode) and modification time: a rewrite, even an identical one, changes them. */
    private static Map<String, List<Object>> identities(Path dir) throws IOException {
        Map<String, List<Object>> ids = new HashMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                var a = Files.readAttributes(f, BasicFileAttributes.class);
                ids.put(f.getFileName().toString(), List.of(a.fileKey(), a.lastModifiedTime()));
            }
        }
        ids.put(".", List.of(Files.readAttributes(dir, BasicFileAttributes.class).fileKey()));
        return ids;
    }

    private static Set<String> names(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return new HashSet<>(files.map(f -> f.getFileName().toString()).toList());
        }
    }
}
