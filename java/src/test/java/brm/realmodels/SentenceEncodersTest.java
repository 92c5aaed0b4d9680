package brm.realmodels;

import brm.imports.onnx.LangchainModelsTest;
import brm.imports.onnx.OnnxImporter;
import brm.imports.onnx.OnnxRuntimeReference;
import brm.imports.onnx.OnnxRuntimeReference.Batch;
import brm.lora.LoraAdapter;
import brm.reward.RewardModel;
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
 * brm's own BERT forward ({@link RewardModel} on the CPU backend) on three trained sentence encoders (the langchain4j
 * ONNX jars, imported with {@link OnnxImporter}) against onnxruntime running the original graph, on real sentences
 * tokenized by brm's {@link Tokenizer} (checked id for id against Hugging Face tokenizers through DJL).
 *
 * RewardModel shows only r = w · pool(h), so each sentence is scored under HEADS random heads w (an adapter's score
 * head, which wins over the directory's): together they check the pooled vector, mean for MiniLM and e5, the CLS row
 * for bge, against the same pooling of onnxruntime's last hidden state.
 */
class SentenceEncodersTest {
    private static final int HEADS = 4;
    /** |brm - onnxruntime| relative to the dot product's own scale, sum_i |w_i p_i|. */
    private static final double TOLERANCE = 1e-4;
    /** Accents, curly quotes, a currency sign, CJK and an unknown symbol: the normalizer's and WordPiece's cases. */
    private static final String UNUSUAL = "Café au lait costs €3.50 — the naïve résumé said “don’t” (東京) ☃!";

    @TempDir
    Path tmp;

    private final long seed = System.nanoTime();
    private final Random random = new Random(seed);

    @ParameterizedTest
    @EnumSource(LangchainModelsTest.Model.class)
    void brmForwardMatchesOnnxRuntimeThroughRandomHeads(LangchainModelsTest.Model model) throws Exception {
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
        RealTexts.alpacaEval(random, 3, 400).forEach(e -> sentences.add(e.instruction()));

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

        double maxRelative = 0, maxAbsolute = 0;
        for (int h = 0; h < HEADS; h++) {
            float[] w = new float[pooled[0].length];
            for (int i = 0; i < w.length; i++) w[i] = (float) random.nextGaussian();
            float[] rewards;
            try (RewardModel rm = RewardModel.open(dir, new LoraAdapter(Map.of(), w), new RewardModel.Options(2, 4096, OptionalLong.empty()))) {
                rewards = rm.score(ids);
            }
            assertEquals(sentences.size(), rewards.length);
            for (int s = 0; s < rewards.length; s++) {
                double expected = 0, scale = 0;
                for (int i = 0; i < w.length; i++) {
                    expected += w[i] * pooled[s][i];
                    scale += Math.abs(w[i] * pooled[s][i]);
                }
                maxAbsolute = Math.max(maxAbsolute, Math.abs(rewards[s] - expected));
                maxRelative = Math.max(maxRelative, Math.abs(rewards[s] - expected) / scale);
            }
        }
        System.out.printf("%s: brm reward vs onnxruntime w·%s-pool, %d sentences x %d heads: max abs %.2e, max rel %.2e%n",
                model.onnx, model.family.pooling, sentences.size(), HEADS, maxAbsolute, maxRelative);
        assertTrue(maxRelative < TOLERANCE, "relative error " + maxRelative + " (seed " + seed + ", " + sentences + ")");
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
