package brm.reward;

import brm.backbone.LinearModule;
import brm.backbone.ModelConfig;
import brm.backend.ReferenceBackend;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;
import brm.reward.DifferentiableRewardModel.Parameter;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End-to-end gradients of the reward with respect to every LoRA factor and the head, on the tiny
 * random models of all fixtures (GPT-NeoX parallel and sequential, Llama with GQA and tied
 * embeddings, BERT mean and cls), in float64 on the reference backend, against central finite
 * differences of L = Σ_s dr_s·r_s for a random dr. The LoRA factors are random and nonzero, so every
 * path is live. Targets: every linear (the lowest layer skips only its input gradient), only the
 * top layer's linears (the layers below are skipped entirely), and every linear with LoRA dropout.
 */
class ModelGradientTest {
    static final List<String> ALL = Fixtures.ALL;

    @ParameterizedTest
    @FieldSource("ALL")
    void everyLinearMatchesFiniteDifferences(String name) {
        check(name, m -> true, 1);
    }

    @ParameterizedTest
    @FieldSource("ALL")
    void topLayerOnlyMatchesFiniteDifferences(String name) {
        check(name, m -> m.path().contains(".1."), 2);
    }

    /** With LoRA dropout (p = 0.3) on, the masks of a seed are redrawn identically by every forward and backward. */
    @ParameterizedTest
    @FieldSource("ALL")
    void loraDropoutMatchesFiniteDifferences(String name) {
        check(name, m -> true, 3);
    }

    private static void check(String name, Predicate<LinearModule> targets, long seed) {
        Random random = new Random(name.hashCode() * 31L + seed);
        ModelConfig config = ModelConfig.read(Fixtures.dir(name));
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        int r = 3;
        for (LinearModule m : config.linearModules()) {
            if (m.equals(config.score()) || !targets.test(m)) continue;
            layers.put(m.path(), new LoraLayer(m.path(), r, m.in(), m.out(), 1.7f, gaussian(random, r * m.in(), 0.2), gaussian(random, m.out() * r, 0.2)));
        }
        List<int[]> sequences = Fixtures.sequences(Fixtures.expected(name));
        ReferenceBackend backend = new ReferenceBackend();
        try (var model = DifferentiableRewardModel.open(Fixtures.dir(name), new LoraAdapter(layers, null), backend, OptionalLong.of(seed), 0.3f)) {
            float[] dr = gaussian(random, sequences.size(), 1);
            if (seed == 3) {
                float[] plain = model.forward(sequences);
                model.dropout(99L);
                assertTrue(!java.util.Arrays.equals(plain, model.forward(sequences)), "dropout changes the rewards");
            }
            model.forward(sequences);
            model.zeroGradients();
            model.backward(dr);
            double worst = 0;
            for (Parameter p : model.parameters()) {
                double[] value = backend.data(p.value()), grad = backend.data(p.gradient());
                List<Integer> coords = new ArrayList<>();
                for (int k = 0; k < 3; k++) coords.add(random.nextInt(value.length));
                double scale = 0, error = 0;
                for (int i : coords) {
                    double saved = value[i], h = 1e-5 * Math.max(1, Math.abs(saved));
                    value[i] = saved + h;
                    double plus = loss(model, backend, sequences, dr);
                    value[i] = saved - h;
                    double minus = loss(model, backend, sequences, dr);
                    value[i] = saved;
                    double fd = (plus - minus) / (2 * h);
                    scale = Math.max(scale, Math.abs(fd));
                    error = Math.max(error, Math.abs(fd - grad[i]));
                }
                double rel = error / Math.max(scale, 1e-8);
                worst = Math.max(worst, rel);
                assertTrue(rel <= 1e-6, name + " " + p.key() + ": relative error " + rel + " (scale " + scale + ")");
            }
            assertTrue(model.parameters().size() == 2 * layers.size() + 1, "every LoRA factor and the head are parameters");
            System.out.printf("%-22s %2d LoRA layers: worst relative error vs finite differences %.2e%n", name, layers.size(), worst);
        }
    }

    /** Σ_s dr_s·r_s in float64: the reference backend's rewards read before narrowing. */
    private static double loss(DifferentiableRewardModel model, ReferenceBackend backend, List<int[]> sequences, float[] dr) {
        double[] rewards = backend.data(model.forwardTensor(sequences));
        double l = 0;
        for (int s = 0; s < dr.length; s++) l += dr[s] * rewards[s];
        return l;
    }

    static float[] gaussian(Random random, int n, double std) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (random.nextGaussian() * std);
        return x;
    }
}
