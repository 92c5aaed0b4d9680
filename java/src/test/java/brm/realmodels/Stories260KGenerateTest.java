package brm.realmodels;

import brm.imports.llama2c.Llama2cImporter;
import brm.io.DataFolder;
import brm.policy.CachedDecoding;
import brm.policy.Generator;
import brm.policy.Sampler;
import brm.reward.CausalLM;
import brm.tokenize.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Generation on real trained weights, stories260K imported from llama2.c: greedy decoding with the KV cache gives
 * the continuation of the numpy forward recorded in stories260K/SOURCE.txt, and cached logits equal the full
 * recompute for a batch of real-text prompts of different lengths.
 */
class Stories260KGenerateTest {
    private static final String ORIGIN = "github.com/ytmytm/llama2.c64";
    /** SOURCE.txt: greedy continuation ids after BOS (id 1). */
    static final int[] GREEDY = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
            338, 401, 396, 267, 337, 410, 408, 419, 292};

    @TempDir
    Path tmp;

    static Path importModel(Path dir) {
        Llama2cImporter.importModel(DataFolder.require("stories260K", "stories260K.bin", ORIGIN),
                DataFolder.require("stories260K", "tok512.bin", ORIGIN), dir, false);
        return dir;
    }

    @Test
    void greedyFromBosIsTheSourceContinuationAtAnyBatchSize() {
        Path dir = importModel(tmp.resolve("stories260K"));
        try (CausalLM lm = CausalLM.open(dir, null, 1)) {
            List<int[]> prompts = List.of(new int[] {1}, new int[] {1, 403, 407}, new int[] {1});
            for (int batch : new int[] {1, 3}) {
                List<Generator.Sample> samples = Generator.generate(lm, prompts, 1,
                        new Generator.Options(GREEDY.length, Sampler.Settings.GREEDY, 0, batch, new int[] {2}), null);
                assertArrayEquals(GREEDY, samples.get(0).ids(), "greedy from BOS, batch " + batch);
                assertArrayEquals(Arrays.copyOfRange(GREEDY, 2, GREEDY.length), Arrays.copyOf(samples.get(1).ids(), GREEDY.length - 2),
                        "greedy from BOS + its first two tokens");
                assertArrayEquals(GREEDY, samples.get(2).ids());
            }
        }
    }

    @Test
    void cachedLogitsEqualTheFullRecompute() {
        Path dir = importModel(tmp.resolve("stories260K"));
        int[] story = Tokenizer.load(dir.resolve("tokenizer.json")).encode(RealTexts.firstTinyStory(), false);
        List<int[]> sequences = new ArrayList<>();
        int[] lengths = {37, 12, 61, 5}, promptLengths = {9, 1, 23, 4};
        for (int i = 0, at = 0; i < lengths.length; at += lengths[i++]) {
            int[] s = new int[lengths[i]];
            s[0] = 1;
            System.arraycopy(story, at, s, 1, lengths[i] - 1);
            sequences.add(s);
        }
        for (int threads : new int[] {1, 2})
            try (CausalLM lm = CausalLM.open(dir, null, threads)) {
                double error = CachedDecoding.maxError(lm, sequences, promptLengths, 3);
                System.out.printf("stories260K: KV cache vs recompute, %d thread(s): max rel error %.2e%n", threads, error);
                assertTrue(error <= 1e-4, "cached logits differ from the recomputed ones by " + error);
            }
        assertEquals(4, sequences.size());
    }
}
