package brm.laplace;

import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.CpuBackend;
import brm.backend.CudaParity;
import brm.batch.PreferencePairs.Pair;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;
import brm.reward.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Laplace fit and the predictive on the CUDA backend against the CPU backend, whole models: the training
 * fixtures' adapters (LoRA on several modules, a head), random pairs, every token mode, full and low-rank
 * factors. Same posterior (raw factors, eigenvalues) and same μ, σ² and pair covariances to FP32 tolerance.
 */
class CudaLaplaceEndToEndTest {
    private record Fit(Posterior posterior, Predictive.Batch scored) {}

    private static Fit fitAndScore(String fixture, Backend backend, List<Pair> pairs, List<int[]> sequences, Laplace.Options options) {
        var dir = Fixtures.dir(fixture);
        LoraAdapter adapter = PeftAdapter.load(dir.resolve("adapter"), ModelConfig.read(dir));
        try (var model = DifferentiableRewardModel.open(dir, adapter, backend, OptionalLong.empty(), 0f)) {
            Posterior p = Laplace.fit(model, adapter, pairs, List.of(), options);
            return new Fit(p, new Predictive(model, p).score(sequences, true));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_parallel_train", "llama_gqa_train", "bert_mean_train"})
    void fitAndPredictiveMatchTheCpu(String fixture) {
        Random random = new Random();
        int vocab = ModelConfig.read(Fixtures.dir(fixture)).vocabSize();
        List<Pair> pairs = new ArrayList<>();
        for (int i = 0; i < 6; i++)
            pairs.add(new Pair(i + 1, random.ints(2 + random.nextInt(9), 0, vocab).toArray(), random.ints(2 + random.nextInt(9), 0, vocab).toArray(), 0f));
        List<int[]> sequences = new ArrayList<>();
        for (int i = 0; i < 4; i++) sequences.add(random.ints(1 + random.nextInt(12), 0, vocab).toArray());
        for (Tokens tokens : Tokens.values())
            for (int lowRank : new int[]{0, 3}) {
                var options = new Laplace.Options(Fisher.EXACT, tokens, Laplace.Prior.FIXED, 0.5, false, lowRank, 4, 4, true, 1);
                Fit cpu = fitAndScore(fixture, new CpuBackend(1), pairs, sequences, options);
                Fit cuda = fitAndScore(fixture, CudaParity.backend(), pairs, sequences, options);
                String what = fixture + " " + tokens + " low rank " + lowRank;
                assertEquals(cpu.posterior.layers().size(), cuda.posterior.layers().size());
                for (int l = 0; l < cpu.posterior.layers().size(); l++) {
                    LayerPosterior a = cpu.posterior.layers().get(l), b = cuda.posterior.layers().get(l);
                    close(what + " " + a.key() + " eigenvalues of G", a.g().values(), b.g().values(), 1e-4);
                    close(what + " " + a.key() + " eigenvalues of A", a.a().values(), b.a().values(), 1e-4);
                }
                close(what + " μ", toDouble(cpu.scored.mean()), toDouble(cuda.scored.mean()), 1e-4);
                close(what + " σ²", cpu.scored.variance(), cuda.scored.variance(), 1e-3);
                close(what + " pair covariances", cpu.scored.pairCovariance(), cuda.scored.pairCovariance(), 1e-3);
            }
    }

    private static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    /** Each element within tolerance of the largest magnitude of the reference (eigenvalues span decades; tiny ones are rounding). */
    private static void close(String what, double[] expected, double[] got, double tolerance) {
        assertEquals(expected.length, got.length, what + ": length");
        double scale = 0, worst = 0;
        for (double e : expected) scale = Math.max(scale, Math.abs(e));
        for (int i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
        assertTrue(worst <= tolerance * Math.max(scale, 1e-30), what + ": max error " + worst + " of scale " + scale);
    }
}
