package brm.realmodels;

import brm.imports.onnx.LangchainModelsTest;
import brm.imports.onnx.OnnxImporter;
import brm.imports.onnx.OnnxRuntimeReference;
import brm.imports.onnx.OnnxRuntimeReference.Batch;
import brm.lora.LoraAdapter;
import brm.reward.RewardModel;
import brm.reward.SentenceEncoder;
import brm.tokenize.HfReference;
import brm.tokenize.Tokenizer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;
import java.util.zip.ZipFile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm's own BERT forward on three trained sentence encoders (the langchain4j ONNX jars, imported with
 * {@link OnnxImporter}) against onnxruntime running the original graph, on a few dozen real sentences tokenized by
 * brm's {@link Tokenizer} (checked id for id against Hugging Face tokenizers through DJL):
 * {@link SentenceEncoder}'s embeddings (mean pooling for MiniLM and e5, the CLS row for bge, L2-normalised as each
 * family does) against the same pooling of onnxruntime's last hidden state, and {@link RewardModel}'s reward
 * r = w · pool(h) under a random head w.
 */
class SentenceEncodersTest {
    /** Embeddings: |brm - onnxruntime| per component; rewards: relative to the dot product's scale, sum_i |w_i p_i|. */
    private static final double TOLERANCE = 1e-4;
    /** (anchor, paraphrase, unrelated): a sentence embedding must put the paraphrase closer. */
    private static final String[][] PARAPHRASES = {
            {"The cat is sleeping on the warm windowsill.", "A cat naps on the sunny window ledge.", "Quarterly revenue rose by eight percent."},
            {"How do I bake bread at home?", "What is a simple recipe for homemade bread?", "The train to Paris leaves at noon."},
            {"She won the chess tournament last weekend.", "Last weekend she took first place in the chess competition.", "Photosynthesis converts light into chemical energy."}};
    /** Accents, curly quotes, a currency sign, CJK and an unknown symbol: the normalizer's and WordPiece's cases. */
    private static final String UNUSUAL = "Café au lait costs €3.50 — the naïve résumé said “don’t” (東京) ☃!";

    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    @ParameterizedTest
    @EnumSource(LangchainModelsTest.Model.class)
    void brmForwardMatchesOnnxRuntime(LangchainModelsTest.Model model) throws Exception {
        // the graph is inflated from the jar once: imported from a file, and run by onnxruntime from memory
        byte[] onnx;
        Path onnxFile = tmp.resolve(model.onnx), tokenizerFile = tmp.resolve(model.tokenizer), dir = tmp.resolve(model.name().toLowerCase());
        try (ZipFile zip = new ZipFile(LangchainModelsTest.jarHolding(model.onnx).toFile())) {
            onnx = zip.getInputStream(zip.getEntry(model.onnx)).readAllBytes();
            Files.write(onnxFile, onnx);
            Files.write(tokenizerFile, zip.getInputStream(zip.getEntry(model.tokenizer)).readAllBytes());
        }
        assertEquals(model.family, OnnxImporter.importModel(onnxFile, tokenizerFile, dir, false).family());
        List<String> sentences = new ArrayList<>(List.of(UNUSUAL));
        RealTexts.alpacaEval(random, 20, 400).forEach(e -> sentences.add(e.instruction()));
        for (String[] triple : PARAPHRASES) sentences.addAll(List.of(triple));

        Tokenizer tokenizer = Tokenizer.load(dir.resolve("tokenizer.json"));
        List<int[]> ids = new ArrayList<>();
        try (HfReference hf = HfReference.load(dir.resolve("tokenizer.json"))) {
            for (String s : sentences) {
                int[] brmIds = tokenizer.encode(s, true);
                assertArrayEquals(hf.encode(s, true), brmIds, s);
                ids.add(brmIds);
            }
        }

        double[][] pooled = new double[sentences.size()][];
        try (var runtime = new OnnxRuntimeReference(onnx)) {
            for (int s = 0; s < ids.size(); s++) {
                long[] row = Arrays.stream(ids.get(s)).asLongStream().toArray(), ones = new long[row.length];
                Arrays.fill(ones, 1);
                float[][] hidden = runtime.lastHiddenState(new Batch(new long[][] {row}, new long[][] {new long[row.length]}, new long[][] {ones}))[0];
                pooled[s] = pool(hidden, model.family.pooling);
            }
        }

        float[][] embeddings;
        try (SentenceEncoder encoder = SentenceEncoder.open(dir, null, 2, 4096)) {
            assertTrue(encoder.config().normalizeEmbeddings(), "the importer records the family's normalisation");
            embeddings = encoder.embed(ids, true);
        }
        double maxEmbedding = 0;
        for (int s = 0; s < ids.size(); s++) {
            double[] expected = normalized(pooled[s]);
            for (int i = 0; i < expected.length; i++) maxEmbedding = Math.max(maxEmbedding, Math.abs(embeddings[s][i] - expected[i]));
        }

        float[] w = new float[pooled[0].length];
        for (int i = 0; i < w.length; i++) w[i] = (float) random.nextGaussian();
        float[] rewards;
        try (RewardModel rm = RewardModel.open(dir, new LoraAdapter(Map.of(), w), new RewardModel.Options(2, 4096, OptionalLong.empty()))) {
            rewards = rm.score(ids);
        }
        double maxRewardRelative = 0;
        for (int s = 0; s < rewards.length; s++) {
            double expected = 0, scale = 0;
            for (int i = 0; i < w.length; i++) {
                expected += w[i] * pooled[s][i];
                scale += Math.abs(w[i] * pooled[s][i]);
            }
            maxRewardRelative = Math.max(maxRewardRelative, Math.abs(rewards[s] - expected) / scale);
        }
        System.out.printf("%s: %d sentences, brm vs onnxruntime: embeddings (%s pooling, normalised) max abs %.2e; rewards max rel %.2e%n",
                model.onnx, sentences.size(), model.family.pooling, maxEmbedding, maxRewardRelative);
        assertTrue(maxEmbedding < TOLERANCE, "embedding error " + maxEmbedding + " (seed " + seed + ", " + sentences + ")");
        assertTrue(maxRewardRelative < TOLERANCE, "reward error " + maxRewardRelative + " (seed " + seed + ")");

        int base = sentences.size() - 3 * PARAPHRASES.length;
        for (int k = 0; k < PARAPHRASES.length; k++) {
            float[] anchor = embeddings[base + 3 * k], paraphrase = embeddings[base + 3 * k + 1], unrelated = embeddings[base + 3 * k + 2];
            assertTrue(dot(anchor, paraphrase) > dot(anchor, unrelated) + 0.05,
                    model.onnx + ": \"" + PARAPHRASES[k][1] + "\" should be closer to \"" + PARAPHRASES[k][0] + "\" than \"" + PARAPHRASES[k][2] + "\"");
        }
    }

    private static double[] normalized(double[] v) {
        double norm = Math.sqrt(Arrays.stream(v).map(x -> x * x).sum());
        return Arrays.stream(v).map(x -> x / norm).toArray();
    }

    private static double dot(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d += a[i] * b[i];
        return d;
    }

    /** pooled [hidden] of hidden [n][hidden]: the mean over the n tokens, or the first (CLS) row. */
    private static double[] pool(float[][] hidden, String pooling) {
        double[] p = new double[hidden[0].length];
        int rows = pooling.equals("cls") ? 1 : hidden.length;
        for (int t = 0; t < rows; t++)
            for (int i = 0; i < p.length; i++) p[i] += hidden[t][i] / (double) rows;
        return p;
    }
}
