package brm.reward;

import brm.backend.CudaBackend;
import brm.backend.CudaParity;
import brm.lora.LoraAdapter;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

import java.util.List;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole models on the CUDA backend (a GPU when one answers, else the emulator running the same kernels) against
 * the PyTorch fixtures of make_fixtures.py: GPT-NeoX (parallel and sequential residual), Llama (GQA, tied
 * embeddings) and BERT (mean and CLS pooling) rewards, with and without a LoRA adapter, in one batch and split
 * into batches; the decoders' next-token logits. FP32 throughout: the CPU backend's tolerance.
 */
class CudaFixtureTest {
    static final List<String> ALL = Fixtures.ALL;
    static final List<String> DECODERS = Fixtures.DECODERS;

    private static void check(String what, float[] actual, double[] expected, double tolerance) {
        double err = Fixtures.maxRelError(actual, expected, 1);
        System.out.printf("%-50s max rel error %.2e%n", what, err);
        assertTrue(err <= tolerance, what + ": max relative error " + err);
    }

    private static float[] score(String name, LoraAdapter adapter, int maxBatchTokens, CudaBackend backend) {
        try (RewardModel m = RewardModel.open(Fixtures.dir(name), adapter, new RewardModel.Options(1, maxBatchTokens, OptionalLong.empty()), backend)) {
            return m.score(Fixtures.sequences(Fixtures.expected(name)));
        }
    }

    @ParameterizedTest
    @FieldSource("ALL")
    void rewardsMatchPyTorch(String name) {
        JsonNode e = Fixtures.expected(name);
        double[] expected = Fixtures.flat(e.get("rewards"));
        check(name + " rewards on CUDA, one batch", score(name, null, 4096, CudaParity.backend()), expected, RewardModelFixtureTest.TOLERANCE);
        check(name + " rewards on CUDA, split batches", score(name, null, 20, CudaParity.backend()), expected, RewardModelFixtureTest.TOLERANCE);
        if (Fixtures.hasAdapter(name))
            check(name + " rewards with adapter on CUDA", score(name, Fixtures.adapter(name), 20, CudaParity.backend()),
                    Fixtures.flat(e.get("rewards_with_adapter")), RewardModelFixtureTest.TOLERANCE);
    }

    @ParameterizedTest
    @FieldSource("ALL")
    void rewardsWithSixteenBitWeightsStayClose(String name) {
        JsonNode e = Fixtures.expected(name);
        for (CudaBackend.Precision p : List.of(CudaBackend.Precision.BF16, CudaBackend.Precision.FP16)) {
            float[] got = score(name, null, 4096, CudaParity.backend(p));
            // 16-bit weights and activations in the frozen products (8 and 11 bits of mantissa), FP32 everywhere else
            check(name + " rewards on CUDA, " + p, got, Fixtures.flat(e.get("rewards")), p == CudaBackend.Precision.BF16 ? 5e-2 : 1e-2);
        }
    }

    @ParameterizedTest
    @FieldSource("DECODERS")
    void logitsMatchPyTorch(String name) {
        JsonNode e = Fixtures.expected(name);
        List<int[]> sequences = Fixtures.sequences(e);
        try (CausalLM lm = CausalLM.open(Fixtures.dir(name), null, CudaParity.backend())) {
            for (int s = 0; s < sequences.size(); s++)
                check(name + " last logits on CUDA, sequence " + s, lm.lastLogits(sequences.get(s)), Fixtures.flat(e.get("last_logits").get(s)),
                        RewardModelFixtureTest.TOLERANCE);
            float[][] all = lm.logits(sequences.getFirst());
            float[] flat = new float[all.length * all[0].length];
            for (int t = 0; t < all.length; t++) System.arraycopy(all[t], 0, flat, t * all[t].length, all[t].length);
            check(name + " all logits on CUDA, first sequence", flat, Fixtures.flat(e.get("all_logits_first")), RewardModelFixtureTest.TOLERANCE);
        }
    }
}
