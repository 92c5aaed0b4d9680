package brm.laplace;

import brm.BrmException;
import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.Backends;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;

/**
 * A reward model with its Laplace posterior (ADIR/posterior.safetensors): each reward comes with its
 * mean μ (the MAP reward), variance σ² (see {@link Predictive}) and the penalised rewards
 * μ − k·σ or μ − k·σ² that best-of-n ranks by. For a pair, Δ = r(chosen) − r(rejected) has mean
 * μ_c − μ_r and variance σ²_c + σ²_r − 2·cov, and P(chosen ≻ rejected) ≈ σ(μ_Δ / √(1 + π·var(Δ)/8))
 * (the probit approximation). Not thread-safe; one batch per call, each sequence's results
 * independent of its batch.
 */
public final class BayesianRewardModel implements AutoCloseable {
    /** μ − k·σ or μ − k·σ², with σ the raw or the pool-relative standard deviation. */
    public enum Penalty {
        STD, VAR, STD_REL, VAR_REL;

        public static Penalty parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new BrmException("--penalty must be std, var, std_rel or var_rel, not '" + s + "'");
            }
        }

        public boolean relative() {
            return this == STD_REL || this == VAR_REL;
        }

        /** μ − k·σ or μ − k·σ² for the variance this penalty reads (raw or relative). */
        public double apply(double mean, double variance, double k) {
            return this == STD || this == STD_REL ? mean - k * Math.sqrt(variance) : mean - k * variance;
        }
    }

    private final DifferentiableRewardModel model;
    private final Posterior posterior;
    private final Predictive predictive;

    private BayesianRewardModel(DifferentiableRewardModel model, Posterior posterior) {
        this.model = model;
        this.posterior = posterior;
        this.predictive = new Predictive(model, posterior);
    }

    /** Loads the model directory with the adapter in adapterDir and the posterior beside it, on the selected backend. */
    public static BayesianRewardModel open(Path modelDir, Path adapterDir, int threads, OptionalLong initHead) {
        return open(modelDir, adapterDir, Backends.create(threads), initHead);
    }

    /** As {@link #open(Path, Path, int, OptionalLong)} on the given backend, which the model then owns. */
    public static BayesianRewardModel open(Path modelDir, Path adapterDir, Backend backend, OptionalLong initHead) {
        Posterior posterior;
        LoraAdapter adapter;
        try {
            ModelConfig config = ModelConfig.read(modelDir);
            adapter = PeftAdapter.load(adapterDir, config);
            if (!Posterior.exists(adapterDir)) throw new BrmException(adapterDir + ": has no " + Posterior.FILE + "; run brm laplace first");
            posterior = Posterior.read(adapterDir, adapter);
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
        return new BayesianRewardModel(DifferentiableRewardModel.open(modelDir, adapter, backend, initHead, 0f), posterior);
    }

    public Posterior posterior() {
        return posterior;
    }

    /** μ [n], σ² [n] and, with pairs (sequences 2i, 2i+1), the covariance within each pair [n/2]. */
    public Predictive.Batch score(List<int[]> sequences, boolean pairs) {
        return predictive.score(sequences, pairs);
    }

    /** The last {@link #score} batch's pooled hidden states [n][hidden]: the reward model's features of each sequence. */
    public float[][] lastFeatures() {
        var pooled = model.lastPooled();
        float[] v = model.backend().download(pooled);
        float[][] out = new float[pooled.rows()][];
        for (int s = 0; s < out.length; s++) out[s] = Arrays.copyOfRange(v, s * pooled.cols(), (s + 1) * pooled.cols());
        return out;
    }

    /** The predictive of the last {@link #score} batch: its coefficients and relative variances. */
    public Predictive predictive() {
        return predictive;
    }

    /** P(chosen ≻ rejected) by the probit approximation, as its logit μ_Δ / √(1 + π·var(Δ)/8). */
    public static double probitLogit(double meanDifference, double varianceDifference) {
        return meanDifference / Math.sqrt(1 + Math.PI * Math.max(0, varianceDifference) / 8);
    }

    @Override
    public void close() {
        model.close();
    }
}
