package brm.laplace;

import brm.BrmException;
import brm.backend.Tensor;
import brm.batch.PreferencePairs;
import brm.batch.PreferencePairs.Pair;
import brm.io.Jsonl;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;
import brm.reward.Logistic;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Fits the Laplace posterior of a LoRA reward model (Laplace-LoRA with K-FAC) on preference pairs:
 *   1. one pass over the pairs, batchSize at a time: forward (the MAP rewards; log p(D|θ*) = Σ log σ(Δ_n)),
 *      then backward of the {@link Fisher} seeds, the K-FAC factors accumulated by {@link KfacCollector}
 *   2. each factor eigendecomposed in float64 (clamping rounding-level negative eigenvalues to 0)
 *   3. the prior precision δ: by marginal likelihood (scalar or per layer, {@link MarginalLikelihood}),
 *      by validation NLL of the probit predictive over logspace(−4, 4, 100) (grid), or given
 * The LoRA matrices are in the posterior; the head only with includeHead (a dense block: G = [1],
 * A = Σ_s seed_s²·pooled_s·pooled_sᵀ).
 */
public final class Laplace {
    private Laplace() {}

    public enum Prior { MARGLIK, GRID, FIXED }

    /**
     * @param prior       how δ is chosen; FIXED uses {@code delta}
     * @param perLayer    one δ per matrix (marglik) instead of one for all
     * @param lowRank     sketch rank K for factors wider than lowRankThreshold (0: all full)
     * @param seed        the MC Fisher's draws
     */
    public record Options(Fisher fisher, Tokens tokens, Prior prior, double delta, boolean perLayer, int lowRank, int lowRankThreshold,
                          int batchSize, boolean includeHead, long seed) {
        public Options {
            if (prior == Prior.FIXED && (!(delta > 0) || Double.isInfinite(delta)))
                throw new BrmException("the prior precision must be positive and finite, got " + delta);
            if (batchSize < 1) throw new BrmException("batch size must be at least 1");
            if (lowRank < 0) throw new BrmException("--low-rank must be non-negative");
        }
    }

    /** Fits the posterior of model's adapter (the one loaded, hashed as {@code adapter}) on pairs; eval pairs serve the grid prior. */
    public static Posterior fit(DifferentiableRewardModel model, LoraAdapter adapter, List<Pair> pairs, List<Pair> eval, Options o) {
        if (adapter.layers().isEmpty()) throw new BrmException("the adapter has no LoRA layers: there is nothing to put a posterior on");
        if (pairs.isEmpty()) throw new BrmException("no usable preference pairs to fit the posterior on");
        if (o.prior == Prior.GRID && eval.isEmpty()) throw new BrmException("the grid prior needs held-out pairs (--eval-data)");
        model.dropout(null);
        KfacCollector collector = new KfacCollector(model.backend(), o.tokens, o.lowRank, o.lowRankThreshold);
        int hidden = model.config().hiddenSize();
        Factor head = o.includeHead ? collector.fullFactor(PeftAdapter.HEAD + " A", hidden) : null;
        Random random = new Random(o.seed);
        double logLik = 0;
        for (int from = 0; from < pairs.size(); from += o.batchSize) {
            List<Pair> batch = pairs.subList(from, Math.min(pairs.size(), from + o.batchSize));
            float[] rewards = model.forward(PreferencePairs.sequences(batch));
            for (int i = 0; i < batch.size(); i++) logLik -= Logistic.softplus(-((double) rewards[2 * i] - rewards[2 * i + 1]));
            float[] seeds = o.fisher.seeds(rewards, random);
            if (head != null) head.add(scaledRows(model, seeds), 1f);
            collector.batch(model.lastBatch());
            model.probe(collector);
            try {
                model.backward(seeds);
            } finally {
                model.probe(null);
            }
        }
        List<Factor> factors = new ArrayList<>();
        List<Double> counts = new ArrayList<>();
        for (KfacCollector.Layer l : collector.layers()) {
            factors.addAll(List.of(l.g(), l.a()));
            counts.addAll(List.of(1.0, collector.count()));
        }
        if (head != null) {
            factors.add(head);
            counts.add(1.0);
        }
        List<Eigenbasis> bases = Factor.eigenbases(collector.kernels(), factors, counts);
        List<LayerPosterior> layers = new ArrayList<>();
        int next = 0;
        for (KfacCollector.Layer l : collector.layers()) {
            layers.add(new LayerPosterior(l.key(), l.out(), l.in(), bases.get(next), bases.get(next + 1), l.g().matrix(1), l.a().matrix(collector.count()), 1));
            next += 2;
        }
        if (head != null)
            layers.add(new LayerPosterior(PeftAdapter.HEAD, 1, head.n, new Eigenbasis(1, new double[] {1}, new double[] {1}), bases.get(next),
                    new double[] {1}, head.matrix(1), 1));
        layers.sort(Comparator.comparing(LayerPosterior::key));
        List<MarginalLikelihood.Layer> evidence = new ArrayList<>();
        for (LayerPosterior l : layers) evidence.add(l.evidence(normSquared(model, l.key())));
        double[] deltas = switch (o.prior) {
            case FIXED -> new double[] {o.delta};
            case MARGLIK -> o.perLayer ? MarginalLikelihood.optimalPerLayer(evidence) : new double[] {MarginalLikelihood.optimalScalar(evidence)};
            case GRID -> new double[] {grid(model, layers, eval, o)};
        };
        List<LayerPosterior> fitted = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) fitted.add(layers.get(i).withDelta(deltas[deltas.length == 1 ? 0 : i]));
        ObjectNode info = Jsonl.JSON.createObjectNode();
        info.put("fisher", o.fisher.name().toLowerCase(Locale.ROOT)).put("tokens", o.tokens.name().toLowerCase(Locale.ROOT))
                .put("pairs", pairs.size()).put("log_lik", logLik).put("log_z", MarginalLikelihood.logZ(evidence, deltas, logLik))
                .put("prior", o.prior.name().toLowerCase(Locale.ROOT)).put("prior_structure", deltas.length == 1 ? "scalar" : "layer")
                .put("include_head", o.includeHead).put("low_rank", o.lowRank).put("low_rank_threshold", o.lowRankThreshold)
                .put("adapter_sha256", Posterior.adapterHash(adapter)).put("format_version", 1);
        return new Posterior(fitted, info);
    }

    /** Rows seed_s·pooled_s [seqs, hidden] of the head's dense block, on the backend. */
    private static Tensor scaledRows(DifferentiableRewardModel model, float[] seeds) {
        var pooled = model.lastPooled();
        float[] v = model.backend().download(pooled);
        int h = pooled.cols();
        for (int s = 0; s < seeds.length; s++)
            for (int i = 0; i < h; i++) v[s * h + i] *= seeds[s];
        return model.backend().upload(v, pooled.rows(), h);
    }

    /** ‖θ*‖² of one matrix: its current (MAP) values in the model. */
    private static double normSquared(DifferentiableRewardModel model, String key) {
        for (Parameter p : model.parameters())
            if (p.key().equals(key)) {
                double s = 0;
                for (float v : model.backend().download(p.value())) s += (double) v * v;
                return s;
            }
        throw new IllegalStateException("no parameter " + key);
    }

    /** δ on logspace(−4, 4, 100) minimising the probit predictive's BT NLL on the eval pairs: one forward and backward per batch, every δ then re-weights the same coefficients. */
    private static double grid(DifferentiableRewardModel model, List<LayerPosterior> layers, List<Pair> eval, Options o) {
        double[] deltas = new double[100], nll = new double[100];
        for (int k = 0; k < deltas.length; k++) deltas[k] = Math.pow(10, -4 + 8.0 * k / 99);
        Predictive predictive = new Predictive(model, new Posterior(layers, Jsonl.JSON.createObjectNode().put("include_head", o.includeHead)))
                .retainCoefficients();
        for (int from = 0; from < eval.size(); from += o.batchSize) {
            List<Pair> batch = eval.subList(from, Math.min(eval.size(), from + o.batchSize));
            Predictive.Batch b = predictive.score(PreferencePairs.sequences(batch), true);
            for (int i = 0; i < batch.size(); i++) {
                double mu = (double) b.mean()[2 * i] - b.mean()[2 * i + 1];
                for (int k = 0; k < deltas.length; k++)
                    nll[k] += Logistic.softplus(-mu / Math.sqrt(1 + Math.PI * predictive.pairVariance(i, deltas[k]) / 8));
            }
        }
        int best = 0;
        for (int k = 1; k < deltas.length; k++) if (nll[k] < nll[best]) best = k;
        return deltas[best];
    }
}
