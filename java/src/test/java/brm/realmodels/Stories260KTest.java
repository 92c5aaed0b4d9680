package brm.realmodels;

import brm.imports.llama2c.Llama2cImporter;
import brm.io.DataFolder;
import brm.reward.CausalLM;
import brm.tokenize.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * brm's own Llama forward ({@link CausalLM} on the CPU backend) on real trained weights: Karpathy's stories260K
 * (GQA, tied classifier) imported from llama2.c, against the numbers of the numpy forward of the original weights
 * recorded in the data folder's stories260K/SOURCE.txt and tinystories-sample/SOURCE.txt.
 */
class Stories260KTest {
    private static final String ORIGIN = "github.com/ytmytm/llama2.c64";
    private static final int BOS = 1;
    private static final int[] TOP5_AFTER_BOS = {403, 385, 410, 317, 407};
    private static final double[] TOP5_LOGITS = {17.0235, 15.4062, 13.1083, 12.7692, 12.4181};
    private static final int[] GREEDY = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
            338, 401, 396, 267, 337, 410, 408, 419, 292};
    /** Held-out text: BOS + the first story's tokens, the first 200 of them, mean NLL 1.277 nats/token. */
    private static final int NLL_TOKENS = 200;
    private static final double HELD_OUT_NLL = 1.277;
    private static final int[] STORY_FIRST_IDS = {1, 403, 407, 261, 378, 383, 286, 261, 376, 268, 414, 422, 395, 368, 302, 426};

    @TempDir
    static Path tmp;
    private static Path dir;
    private static CausalLM lm;

    @BeforeAll
    static void importAndOpen() {
        dir = tmp.resolve("stories260K");
        Llama2cImporter.importModel(DataFolder.require("stories260K", "stories260K.bin", ORIGIN),
                DataFolder.require("stories260K", "tok512.bin", ORIGIN), dir, false);
        lm = CausalLM.open(dir, null, 2);
    }

    @AfterAll
    static void close() {
        lm.close();
    }

    @Test
    void topFiveAfterBosMatchTheOriginalForward() {
        float[] logits = lm.logits(new int[] {BOS})[0];
        assertEquals(512, logits.length);
        int[] top5 = IntStream.range(0, logits.length).boxed()
                .sorted((a, b) -> Float.compare(logits[b], logits[a])).limit(5).mapToInt(Integer::intValue).toArray();
        assertArrayEquals(TOP5_AFTER_BOS, top5);
        double maxError = 0;
        for (int i = 0; i < 5; i++) maxError = Math.max(maxError, Math.abs(TOP5_LOGITS[i] - logits[top5[i]]));
        System.out.printf("stories260K: top-5 logits after BOS, max |brm - numpy| %.2e%n", maxError);
        assertEquals(0, maxError, 1e-3, "top-5 logits " + Arrays.toString(top5));
    }

    /** Greedy decoding one token at a time (lastLogits), then the same sequence teacher-forced in one pass (logits). */
    @Test
    void greedyContinuationMatchesAndAgreesWithTheOnePassLogits() {
        int[] tokens = {BOS};
        for (int step = 0; step < GREEDY.length; step++) {
            tokens = Arrays.copyOf(tokens, tokens.length + 1);
            tokens[tokens.length - 1] = argmax(lm.lastLogits(Arrays.copyOf(tokens, tokens.length - 1)));
        }
        assertArrayEquals(GREEDY, Arrays.copyOfRange(tokens, 1, tokens.length));

        float[][] all = lm.logits(Arrays.copyOf(tokens, tokens.length - 1));
        for (int t = 0; t < all.length; t++) assertEquals(tokens[t + 1], argmax(all[t]), "one-pass argmax at position " + t);
        float[] last = lm.lastLogits(Arrays.copyOf(tokens, tokens.length - 1));
        for (int v = 0; v < last.length; v++) assertEquals(last[v], all[all.length - 1][v], 1e-5, "last-row logit " + v);
    }

    @Test
    void heldOutStoryNllMatchesTheOriginalForward() {
        int[] text = Tokenizer.load(dir.resolve("tokenizer.json")).encode(RealTexts.firstTinyStory(), false);
        int[] ids = new int[NLL_TOKENS];
        ids[0] = BOS;
        System.arraycopy(text, 0, ids, 1, NLL_TOKENS - 1);
        assertArrayEquals(STORY_FIRST_IDS, Arrays.copyOf(ids, STORY_FIRST_IDS.length));

        float[][] logits = lm.logits(ids);
        double nll = 0;
        for (int t = 0; t + 1 < ids.length; t++) nll += logSumExp(logits[t]) - logits[t][ids[t + 1]];
        nll /= ids.length - 1;
        System.out.printf("stories260K: held-out NLL %.5f nats/token over %d tokens (numpy %.3f)%n", nll, ids.length, HELD_OUT_NLL);
        assertEquals(HELD_OUT_NLL, nll, 0.005);
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static double logSumExp(float[] v) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float x : v) max = Math.max(max, x);
        for (float x : v) sum += Math.exp(x - max);
        return max + Math.log(sum);
    }
}
