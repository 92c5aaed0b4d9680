package brm.laplace;

import brm.backbone.LinearModule;
import brm.backbone.ModelConfig;
import brm.backend.Packing;
import brm.backend.ReferenceBackend;
import brm.batch.PreferencePairs.Pair;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;
import brm.reward.Fixtures;
import brm.reward.Logistic;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Laplace posterior in float64 on the reference backend, on the tiny fixture models with random
 * nonzero LoRA updates: the eigenbasis predictive against the dense J (G⊗A + δI)⁻¹ Jᵀ with J from
 * central finite differences, and the eigenvalue log-determinant against a dense Cholesky one; the factors of one one-token row against vec(g aᵀ)vec(g aᵀ)ᵀ; batched
 * against one-at-a-time; chosen and rejected swapped; the file round trip and its adapter check.
 */
class LaplaceTest {
    @TempDir
    Path tmp;

    private static LoraAdapter randomAdapter(ModelConfig config, Random random, boolean head) {
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        int r = 2;
        for (LinearModule m : config.linearModules()) {
            if (m.equals(config.score()) || !(m.path().endsWith("query_key_value") || m.path().endsWith("q_proj") || m.path().endsWith("v_proj")
                    || m.path().endsWith("query") || m.path().endsWith("down_proj") || m.path().endsWith("output.dense"))) continue;
            layers.put(m.path(), new LoraLayer(m.path(), r, m.in(), m.out(), 1.5f, gaussian(random, r * m.in(), 0.3), gaussian(random, m.out() * r, 0.3)));
        }
        return new LoraAdapter(layers, head ? gaussian(random, config.hiddenSize(), 0.5) : null);
    }

    static float[] gaussian(Random random, int n, double std) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (random.nextGaussian() * std);
        return x;
    }

    private static List<Pair> pairs(Random random, int n, int vocab, int minLength) {
        List<Pair> pairs = new ArrayList<>();
        for (int i = 0; i < n; i++)
            pairs.add(new Pair(i + 1, random.ints(minLength + random.nextInt(6), 0, vocab).toArray(),
                    random.ints(minLength + random.nextInt(6), 0, vocab).toArray(), 0f));
        return pairs;
    }

    /** A fixture model with a random LoRA adapter (and head) on the reference backend, and the test's random source. */
    private record Case(String fixture, Random random, ModelConfig config, LoraAdapter adapter, ReferenceBackend backend) {
        static Case of(String fixture, long seed, boolean head) {
            Random random = new Random(seed);
            ModelConfig config = ModelConfig.read(Fixtures.dir(fixture));
            return new Case(fixture, random, config, randomAdapter(config, random, head), new ReferenceBackend());
        }

        DifferentiableRewardModel open() {
            return DifferentiableRewardModel.open(Fixtures.dir(fixture), adapter, backend, OptionalLong.of(3), 0f);
        }
    }

    /** σ² from the eigenbases equals Σ_layers J (G⊗A + δI)⁻¹ Jᵀ, dense, with J by central differences. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_parallel", "llama_gqa", "bert_mean"})
    void predictiveEqualsDenseInverseWithFiniteDifferenceJacobians(String fixture) {
        Case setup = Case.of(fixture, fixture.hashCode(), true);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            List<Pair> data = pairs(random, 5, config.vocabSize(), 2);
            int[] seq = random.ints(4, 0, config.vocabSize()).toArray();
            Map<String, double[]> jacobians = new LinkedHashMap<>();
            for (Tokens tokens : Tokens.values()) {
                Posterior posterior = Laplace.fit(model, adapter, data, List.of(),
                        new Laplace.Options(Fisher.EXACT, tokens, Laplace.Prior.FIXED, 0.7, false, 0, 0, 3, true, 1));
                double sigma2 = new Predictive(model, posterior).score(List.of(seq), false).variance()[0];
                double dense = 0;
                for (LayerPosterior l : posterior.layers()) {
                    double[] j = jacobians.computeIfAbsent(l.key(), k -> jacobian(model, backend, k, seq)), precision = kron(l.rawG(), l.out(), l.rawA(), l.in(), l.delta());
                    dense += quadraticInverse(precision, j);
                    // log det(G⊗A + δI) from the eigenvalue products, through log Z with log p(D|θ) = 0 and ‖θ‖² = 0; the factors
                    // come through FP32 (a batch's product is downloaded), whose rounding-level negative eigenvalues are clamped to 0
                    int n = l.out() * l.in();
                    double logDet = -2 * MarginalLikelihood.logZ(List.of(l.evidence(0)), new double[] {l.delta()}, 0) + n * Math.log(l.delta());
                    assertEquals(logDeterminant(precision, n), logDet, 1e-5 * Math.max(1, Math.abs(logDet)), l.key() + " log det");
                }
                assertEquals(dense, sigma2, 1e-6 * dense, fixture + " " + tokens + ": σ² " + sigma2 + " vs dense " + dense);
                System.out.printf("%-18s %-6s σ² %.6e (dense %.6e)%n", fixture, tokens, sigma2, dense);
            }
        }
    }

    /**
     * Low-rank sketches of rank at least the factors' true rank (5 pairs: ≤ 10 rows) are exact, so the
     * Woodbury form with the left-out directions at eigenvalue 0 must equal the dense inverse of the
     * factors rebuilt from the sketches.
     */
    @Test
    void exactLowRankSketchesEqualTheDenseInverse() {
        Case setup = Case.of("gpt_neox_parallel", 17, false);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            Posterior posterior = Laplace.fit(model, adapter, pairs(random, 5, config.vocabSize(), 2), List.of(),
                    new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.FIXED, 0.3, false, 12, 16, 3, false, 1));
            assertTrue(posterior.layers().stream().anyMatch(l -> !l.g().full()), "some factor is sketched");
            int[] seq = random.ints(5, 0, config.vocabSize()).toArray();
            double sigma2 = new Predictive(model, posterior).score(List.of(seq), false).variance()[0], dense = 0;
            for (LayerPosterior l : posterior.layers())
                dense += quadraticInverse(kron(rebuild(l.g()), l.out(), rebuild(l.a()), l.in(), l.delta()), jacobian(model, backend, l.key(), seq));
            assertEquals(dense, sigma2, 1e-6 * dense, "σ² with sketches " + sigma2 + " vs dense " + dense);
        }
    }

    /** σ_rel² of each response in a pool equals the dense quadratic form of J_s − mean_j J_j (J by finite differences), full and low rank. */
    @ParameterizedTest
    @ValueSource(ints = {0, 12})
    void relativeVarianceIsTheVarianceAgainstThePoolMean(int lowRank) {
        Case setup = Case.of("llama_gqa", 23 + lowRank, false);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            Posterior posterior = Laplace.fit(model, adapter, pairs(random, 5, config.vocabSize(), 2), List.of(),
                    new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.FIXED, 0.4, false, lowRank, 10, 3, false, 1));
            List<int[]> pool = List.of(random.ints(4, 0, config.vocabSize()).toArray(), random.ints(6, 0, config.vocabSize()).toArray(),
                    random.ints(3, 0, config.vocabSize()).toArray());
            Predictive predictive = new Predictive(model, posterior);
            predictive.score(pool, false);
            double[][] mean = null;
            double[][][] coefficients = new double[pool.size()][][];
            for (int s = 0; s < pool.size(); s++) {
                double[][] c = coefficients[s] = predictive.coefficients(s);
                if (mean == null) mean = new double[c.length][];
                for (int l = 0; l < c.length; l++) {
                    if (mean[l] == null) mean[l] = new double[c[l].length];
                    for (int i = 0; i < c[l].length; i++) mean[l][i] += c[l][i] / pool.size();
                }
            }
            Map<String, double[][]> jacobians = new LinkedHashMap<>();
            for (LayerPosterior l : posterior.layers()) {
                double[][] js = new double[pool.size()][];
                for (int q = 0; q < pool.size(); q++) js[q] = jacobian(model, backend, l.key(), pool.get(q));
                jacobians.put(l.key(), js);
            }
            for (int s = 0; s < pool.size(); s++) {
                double dense = 0;
                for (LayerPosterior l : posterior.layers()) {
                    double[][] js = jacobians.get(l.key());
                    double[] rel = js[s].clone();
                    for (int i = 0; i < rel.length; i++) {
                        double m = 0;
                        for (double[] j : js) m += j[i] / pool.size();
                        rel[i] -= m;
                    }
                    dense += quadraticInverse(kron(rebuild(l.g()), l.out(), rebuild(l.a()), l.in(), l.delta()), rel);
                }
                double relative = predictive.relativeVariance(coefficients[s], mean);
                assertEquals(dense, relative, 1e-6 * dense, "response " + s + " (low rank " + lowRank + ")");
            }
        }
    }

    /** Q·diag(λ)·Qᵀ [dim, dim] of an eigenbasis (full or sketch). */
    private static double[] rebuild(Eigenbasis e) {
        int n = e.dim(), k = e.rank();
        double[] m = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int q = 0; q < k; q++) m[i * n + j] += e.vectors()[i * k + q] * e.values()[q] * e.vectors()[j * k + q];
        return m;
    }

    /** ∂r/∂W [out·in] (row-major) of one sequence by central differences in the backend's float64 storage. */
    private static double[] jacobian(DifferentiableRewardModel model, ReferenceBackend backend, String key, int[] seq) {
        Parameter p = model.parameters().stream().filter(q -> q.key().equals(key)).findFirst().orElseThrow();
        double[] w = backend.data(p.value());
        double[] j = new double[p.size()];
        for (int i = 0; i < j.length; i++) {
            double saved = w[i], h = 1e-5;
            w[i] = saved + h;
            double plus = backend.data(model.forwardTensor(List.of(seq)))[0];
            w[i] = saved - h;
            double minus = backend.data(model.forwardTensor(List.of(seq)))[0];
            w[i] = saved;
            j[i] = (plus - minus) / (2 * h);
        }
        return j;
    }

    /** G ⊗ A + δI, dense [out·in, out·in], index (o·in + i). */
    private static double[] kron(double[] g, int out, double[] a, int in, double delta) {
        int n = out * in;
        double[] m = new double[n * n];
        for (int o1 = 0; o1 < out; o1++)
            for (int i1 = 0; i1 < in; i1++)
                for (int o2 = 0; o2 < out; o2++)
                    for (int i2 = 0; i2 < in; i2++)
                        m[(o1 * in + i1) * n + o2 * in + i2] = g[o1 * out + o2] * a[i1 * in + i2] + (o1 == o2 && i1 == i2 ? delta : 0);
        return m;
    }

    /** log det M by Cholesky (M symmetric positive definite). */
    static double logDeterminant(double[] m, int n) {
        double[] l = cholesky(m, n);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += 2 * Math.log(l[i * n + i]);
        return sum;
    }

    static double[] cholesky(double[] m, int n) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k <= i; k++) {
                double s = m[i * n + k];
                for (int q = 0; q < k; q++) s -= l[i * n + q] * l[k * n + q];
                l[i * n + k] = i == k ? Math.sqrt(s) : s / l[k * n + k];
            }
        return l;
    }

    /** jᵀ M⁻¹ j by Cholesky (M symmetric positive definite). */
    static double quadraticInverse(double[] m, double[] j) {
        int n = j.length;
        double[] l = cholesky(m, n);
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            double s = j[i];
            for (int q = 0; q < i; q++) s -= l[i * n + q] * y[q];
            y[i] = s / l[i * n + i];
        }
        double sum = 0;
        for (double v : y) sum += v * v;
        return sum;
    }

    /** One sequence of one token, one row: G ⊗ A = seed²·vec(J)vec(J)ᵀ, J = ∂r/∂W = g aᵀ. */
    @Test
    void oneTokenRowIsTheOuterProductOfItsJacobian() {
        Case setup = Case.of("gpt_neox_parallel", 5, false);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            int[] seq = {17};
            float seed = 0.6f;
            for (Tokens tokens : Tokens.values()) {
                KfacCollector collector = new KfacCollector(backend, tokens, 0, 0);
                model.forward(List.of(seq));
                collector.batch(model.lastBatch());
                model.probe(collector);
                model.backward(new float[] {seed});
                model.probe(null);
                for (KfacCollector.Layer l : collector.layers()) {
                    double[] j = jacobian(model, backend, l.key(), seq);
                    double[] g = l.g().matrix(1), a = l.a().matrix(collector.count());
                    double worst = 0, scale = 0;
                    for (int p = 0; p < j.length; p++)
                        for (int q = 0; q < j.length; q++) {
                            double expected = (double) seed * seed * j[p] * j[q];
                            double actual = g[(p / l.in()) * l.out() + q / l.in()] * a[(p % l.in()) * l.in() + q % l.in()];
                            worst = Math.max(worst, Math.abs(expected - actual));
                            scale = Math.max(scale, Math.abs(expected));
                        }
                    assertTrue(worst <= 1e-7 * scale, tokens + " " + l.key() + ": " + worst + " of " + scale);
                }
            }
        }
    }

    @Test
    void batchedEqualsAloneAndSwappingSidesKeepsTheFactors() {
        Case setup = Case.of("llama_gqa", 9, false);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            List<Pair> data = pairs(random, 6, config.vocabSize(), 1);
            var options = new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.MARGLIK, 0, false, 0, 0, 4, false, 1);
            Posterior posterior = Laplace.fit(model, adapter, data, List.of(), options);
            List<Pair> swapped = data.stream().map(p -> new Pair(p.line(), p.rejected(), p.chosen(), 0f)).toList();
            Posterior other = Laplace.fit(model, adapter, swapped, List.of(), options);
            for (int i = 0; i < posterior.layers().size(); i++) {
                assertArrayEquals(posterior.layers().get(i).rawA(), other.layers().get(i).rawA(), 1e-12);
                assertArrayEquals(posterior.layers().get(i).rawG(), other.layers().get(i).rawG(), 1e-12);
            }
            List<int[]> seqs = new ArrayList<>();
            for (Pair p : data) seqs.add(p.chosen());
            Predictive predictive = new Predictive(model, posterior);
            double[] batched = predictive.score(seqs, false).variance();
            for (int s = 0; s < seqs.size(); s++)
                assertEquals(predictive.score(List.of(seqs.get(s)), false).variance()[0], batched[s], 1e-12 * batched[s]);
            assertTrue(posterior.info().get("log_z").isNumber());
        }
    }

    /** The grid prior picks the δ of logspace(−4, 4, 100) whose probit NLL on the eval pairs is lowest. */
    @Test
    void gridPriorMinimisesValidationNll() {
        Case setup = Case.of("gpt_neox_parallel", 21, false);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            List<Pair> data = pairs(random, 6, config.vocabSize(), 2), eval = pairs(random, 5, config.vocabSize(), 2);
            Posterior grid = Laplace.fit(model, adapter, data, eval, new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.GRID, 0, false, 0, 0, 4, false, 1));
            double chosen = grid.layers().getFirst().delta(), best = Double.POSITIVE_INFINITY, bestDelta = Double.NaN;
            assertEquals("grid", grid.info().get("prior").asText());
            for (int k = 0; k < 100; k += 11) {
                double delta = Math.pow(10, -4 + 8.0 * k / 99), nll;
                Posterior at = Laplace.fit(model, adapter, data, List.of(), new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.FIXED, delta, false, 0, 0, 4, false, 1));
                nll = probitNll(new Predictive(model, at), eval);
                if (nll < best) {
                    best = nll;
                    bestDelta = delta;
                }
                if (Math.abs(delta - chosen) < 1e-12 * chosen) assertTrue(nll <= best + 1e-9);
            }
            double gridNll = probitNll(new Predictive(model, grid), eval);
            assertTrue(gridNll <= best + 1e-9, "grid δ " + chosen + " has NLL " + gridNll + ", δ " + bestDelta + " has " + best);
        }
    }

    /** Σ over pairs of −log P(chosen ≻ rejected) under the probit predictive. */
    private static double probitNll(Predictive p, List<Pair> pairs) {
        double nll = 0;
        for (Pair pair : pairs) {
            Predictive.Batch b = p.score(List.of(pair.chosen(), pair.rejected()), true);
            double mu = (double) b.mean()[0] - b.mean()[1], var = b.variance()[0] + b.variance()[1] - 2 * b.pairCovariance()[0];
            nll += Logistic.softplus(-mu / Math.sqrt(1 + Math.PI * var / 8));
        }
        return nll;
    }

    @Test
    void fileRoundTripAndAdapterCheck() {
        Case setup = Case.of("bert_mean", 13, true);
        Random random = setup.random();
        ModelConfig config = setup.config();
        LoraAdapter adapter = setup.adapter();
        ReferenceBackend backend = setup.backend();
        try (var model = setup.open()) {
            Posterior posterior = Laplace.fit(model, adapter, pairs(random, 4, config.vocabSize(), 2), List.of(),
                    new Laplace.Options(Fisher.MC, Tokens.EXPAND, Laplace.Prior.MARGLIK, 0, true, 2, 20, 2, true, 4));
            posterior.write(tmp);
            Posterior read = Posterior.read(tmp, adapter);
            assertEquals(posterior.layers().size(), read.layers().size());
            for (int i = 0; i < read.layers().size(); i++) {
                LayerPosterior a = posterior.layers().get(i), b = read.layers().get(i);
                assertEquals(a.key(), b.key());
                assertEquals(a.delta(), b.delta());
                assertArrayEquals(a.g().values(), b.g().values());
                assertArrayEquals(a.a().vectors(), b.a().vectors());
            }
            float[] changed = adapter.scoreWeight().clone();
            changed[0] += 1e-3f;
            var e = assertThrows(brm.BrmException.class, () -> Posterior.read(tmp, new LoraAdapter(adapter.layers(), changed)));
            assertTrue(e.getMessage().contains("was fitted to other adapter weights"), e.getMessage());
        }
    }
}
