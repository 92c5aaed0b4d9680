package brm.reward;

import brm.lora.LoraAdapter;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Rewards against the PyTorch float64 references of the fixtures. Tolerance: |brm - reference| ≤
 * 1e-4 · max(|reference|, 1): brm computes in FP32 (weights rounded to FP32 the same way as the
 * reference's), so errors are FP32 accumulation noise, ~1e-6 here.
 */
class RewardModelFixtureTest {
    static final double TOLERANCE = 1e-4;
    static final List<String> ALL = Fixtures.ALL;

    private static float[] score(String name, LoraAdapter adapter, int threads, int maxBatchTokens, List<int[]> sequences) {
        try (RewardModel m = RewardModel.open(Fixtures.dir(name), adapter, new RewardModel.Options(threads, maxBatchTokens, OptionalLong.empty()))) {
            return m.score(sequences);
        }
    }

    private static void check(String what, float[] actual, double[] expected) {
        double err = Fixtures.maxRelError(actual, expected, 1);
        System.out.printf("%-45s max rel error %.2e%n", what, err);
        assertTrue(err <= TOLERANCE, what + ": max relative error " + err);
    }

    @ParameterizedTest
    @FieldSource("ALL")
    void rewardsInOneBatchMatchReference(String name) {
        JsonNode e = Fixtures.expected(name);
        check(name + " rewards, one batch, 1 thread", score(name, null, 1, 4096, Fixtures.sequences(e)), Fixtures.flat(e.get("rewards")));
    }

    /** maxBatchTokens 20 splits the 5-6 sequences (1 to 33 tokens) into batches of 1, 2 and 3 sequences. */
    @ParameterizedTest
    @FieldSource("ALL")
    void rewardsInSplitBatchesOnTwoThreadsMatchReference(String name) {
        JsonNode e = Fixtures.expected(name);
        check(name + " rewards, split batches, 2 threads", score(name, null, 2, 20, Fixtures.sequences(e)), Fixtures.flat(e.get("rewards")));
    }

    /** The unmerged update h = W0·x + s·B(A·x) reproduces the reference's merged W0 + s·B·A, and moves the reward. */
    @ParameterizedTest
    @FieldSource("ALL")
    void rewardsWithAdapterMatchReference(String name) {
        assumeTrue(Fixtures.hasAdapter(name), name + " has no adapter");
        JsonNode e = Fixtures.expected(name);
        LoraAdapter adapter = Fixtures.adapter(name);
        double[] expected = Fixtures.flat(e.get("rewards_with_adapter"));
        check(name + " rewards with adapter, 1 thread", score(name, adapter, 1, 4096, Fixtures.sequences(e)), expected);
        check(name + " rewards with adapter, split, 2 threads", score(name, adapter, 2, 20, Fixtures.sequences(e)), expected);
        double moved = Fixtures.maxRelError(score(name, null, 1, 4096, Fixtures.sequences(e)), expected, 1);
        assertTrue(moved > 100 * TOLERANCE, name + ": the adapter moves rewards by only " + moved);
    }

    /**
     * The same input gives the same bits on every call, while the JIT moves the kernels from the
     * interpreter to C1 and C2 (whose Vector API reductions and EXP would otherwise round differently).
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "bert_mean"})
    void repeatedScoringIsBitIdentical(String name) {
        List<int[]> sequences = Fixtures.sequences(Fixtures.expected(name));
        try (RewardModel m = RewardModel.open(Fixtures.dir(name), null, new RewardModel.Options(1, 4096, OptionalLong.empty()))) {
            float[] first = m.score(sequences);
            for (int i = 0; i < 40; i++) assertArrayEquals(first, m.score(sequences), name + ": call " + i + " differs");
        }
    }

    /**
     * A sequence's reward does not depend on its batch: every op is row-wise or per sequence and
     * rounds the same way in every JIT tier, so with a GEMM whose per-element summation order does not
     * depend on the row count or row position the results are bit-identical (they are with the
     * current GEMM); ≤ 1e-6 relative leaves room for a GEMM whose row tails round differently.
     */
    @ParameterizedTest
    @FieldSource("ALL")
    void rewardDoesNotDependOnBatchComposition(String name) {
        List<int[]> sequences = Fixtures.sequences(Fixtures.expected(name));
        float[] packed = score(name, null, 2, 4096, sequences);
        List<int[]> reversed = new ArrayList<>(sequences.reversed());
        float[] packedReversed = score(name, null, 1, 4096, reversed);
        double worst = 0;
        for (int i = 0; i < sequences.size(); i++) {
            float alone = score(name, null, 1, 4096, List.of(sequences.get(i)))[0];
            float inReverse = packedReversed[sequences.size() - 1 - i];
            for (float other : new float[]{packed[i], inReverse})
                worst = Math.max(worst, Math.abs(other - alone) / Math.max(Math.abs(alone), 1));
        }
        System.out.printf("%-45s max rel difference %.2e%n", name + " alone vs packed", worst);
        assertTrue(worst <= 1e-6, name + ": packed vs alone differ by " + worst);
    }
}
