package brm.imports.onnx;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import brm.imports.onnx.OnnxImporter.Family;
import brm.imports.onnx.OnnxImporter.Imported;
import brm.imports.onnx.OnnxRuntimeReference.Batch;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.langchain4j.model.embedding.EmbeddingModel;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.net.JarURLConnection;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.ZipFile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The trained sentence encoders langchain4j ships in Maven jars (test-scope dependencies), imported with
 * {@link OnnxImporter#importJar} and checked against the runtime they ship for: onnxruntime's last hidden state versus
 * the float64 {@link BertReference} forward over the imported safetensors, and the langchain4j model class's sentence
 * embedding versus the family's pooling (mean or CLS, then L2) over that forward.
 *
 * This class owns DJL start-up in brm's tests: the static initializer keeps DJL offline and on its bundled CPU build
 * before any DJL class loads (the tokenizer here and inside langchain4j's model classes).
 */
public class LangchainModelsTest {
    static {
        System.setProperty("OPT_OUT_TRACKING", "true");
        System.setProperty("RUST_FLAVOR", "cpu");
        System.setProperty("ai.djl.offline", "true");
    }

    public enum Model {
        MINILM("all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json", "allminilml6v2.AllMiniLmL6V2EmbeddingModel", Family.MINILM, 6),
        BGE("bge-small-en-v1.5.onnx", "bge-small-en-v1.5-tokenizer.json", "bgesmallenv15.BgeSmallEnV15EmbeddingModel", Family.BGE, 12),
        E5("e5-small-v2.onnx", "e5-small-v2-tokenizer.json", "e5smallv2.E5SmallV2EmbeddingModel", Family.E5, 12);

        public final String onnx, tokenizer, embeddingModel;
        public final Family family;
        public final int layers;

        Model(String onnx, String tokenizer, String embeddingModel, Family family, int layers) {
            this.onnx = onnx;
            this.tokenizer = tokenizer;
            this.embeddingModel = "dev.langchain4j.model.embedding.onnx." + embeddingModel;
            this.family = family;
            this.layers = layers;
        }
    }

    private static final int CLS = 101, SEP = 102, FIRST_WORD_PIECE = 999;

    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    @ParameterizedTest
    @EnumSource(Model.class)
    void importedEncoderMatchesOnnxRuntimeAndLangchain4j(Model model) throws Exception {
        Path jar = jarHolding(model.onnx), out = tmp.resolve(model.name().toLowerCase());
        Imported imported = OnnxImporter.importJar(jar, out, false);
        assertEquals(model.family, imported.family());
        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals(List.of(384, model.layers, 12, 1536, 30522, 512, 2),
                List.of("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                        "max_position_embeddings", "type_vocab_size").stream().map(k -> config.get(k).asInt()).toList());
        assertEquals(1e-12, config.get("layer_norm_eps").asDouble());
        assertEquals(model.family.pooling, config.get("pooling").asText());

        byte[] onnx;
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            onnx = zip.getInputStream(zip.getEntry(model.onnx)).readAllBytes();
            assertArrayEquals(zip.getInputStream(zip.getEntry(model.tokenizer)).readAllBytes(), Files.readAllBytes(out.resolve("tokenizer.json")));
        }
        List<String> sentences = List.of(randomSentence(out.resolve("tokenizer.json")), randomSentence(out.resolve("tokenizer.json")));
        EmbeddingModel langchain4j = (EmbeddingModel) Class.forName(model.embeddingModel).getConstructor().newInstance();
        double hiddenError, embeddingError = 0;
        try (var runtime = new OnnxRuntimeReference(onnx); var reference = new BertReference(out);
             HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(out.resolve("tokenizer.json"))
                     .optAddSpecialTokens(true).optTruncation(false).optPadding(false).build()) {
            hiddenError = runtime.maxAbsError(reference, Batch.random(random, 2, 12, CLS, SEP, FIRST_WORD_PIECE, 30522, 2));
            for (String sentence : sentences) {
                Encoding e = tokenizer.encode(sentence);
                long[] ids = e.getIds(), types = e.getTypeIds(), mask = e.getAttentionMask();
                assertEquals(CLS, ids[0], sentence);
                double[][] hidden = reference.lastHiddenState(ids, types, mask);
                float[][] runtimeHidden = runtime.lastHiddenState(new Batch(new long[][]{ids}, new long[][]{types}, new long[][]{mask}))[0];
                hiddenError = Math.max(hiddenError, OnnxRuntimeReference.maxAbsError(runtimeHidden, hidden));
                double[] expected = BertReference.sentenceEmbedding(hidden, mask, model.family.pooling);
                float[] actual = langchain4j.embed(sentence).content().vector();
                assertEquals(expected.length, actual.length);
                for (int i = 0; i < actual.length; i++) embeddingError = Math.max(embeddingError, Math.abs(expected[i] - actual[i]));
            }
        }
        System.out.printf("%s: max |onnxruntime - imported float64| hidden state %.2e, |langchain4j - imported| embedding %.2e%n",
                model.onnx, hiddenError, embeddingError);
        // e5-small-v2 carries hidden units of magnitude ~10², where FP32 rounding alone reaches ~1e-4; a wrong graph is off by ≫ 1e-2
        assertTrue(hiddenError < 5e-4, "hidden state error " + hiddenError + " (seed " + seed + ")");
        assertTrue(embeddingError < 1e-5, "sentence embedding error " + embeddingError + " (seed " + seed + ", " + sentences + ")");
    }

    /** Six to ten random whole words of the vocabulary, so each run embeds text it has not seen. */
    private String randomSentence(Path tokenizerJson) throws Exception {
        List<String> words = new ArrayList<>();
        new ObjectMapper().readTree(tokenizerJson.toFile()).get("model").get("vocab").fieldNames()
                .forEachRemaining(w -> { if (w.matches("[a-z]{4,}")) words.add(w); });
        StringBuilder s = new StringBuilder();
        for (int i = 6 + random.nextInt(5); i > 0; i--) s.append(words.get(random.nextInt(words.size()))).append(i > 1 ? " " : ".");
        return s.toString();
    }

    /** The jar on the test class path that holds {@code entry}. */
    public static Path jarHolding(String entry) throws Exception {
        URL url = LangchainModelsTest.class.getClassLoader().getResource(entry);
        assertNotNull(url, entry + " is not on the test class path (a langchain4j-embeddings test dependency)");
        return Path.of(((JarURLConnection) url.openConnection()).getJarFileURL().toURI());
    }
}
