package brm.score;

import brm.BrmException;
import brm.backend.Backends;
import brm.batch.Truncation;
import brm.laplace.BayesianRewardModel.Penalty;
import brm.laplace.Posterior;

import java.io.Serializable;
import java.nio.file.Path;

/**
 * What brm score is asked to do, as plain serialisable values (brm spark-score ships it to its
 * executors): the model directory, the adapter and whether its Laplace posterior is used, the
 * penalised reward μ − k·σ (or μ − k·σ²) when k is a number, the batch size, the compute threads, the
 * backend and the text rules. The options mean what brm score's do (brm score --help).
 *
 * @param adapter    PEFT adapter directory, or null for the bare model
 * @param posterior  score with adapter/posterior.safetensors: μ, σ² (and the penalised reward)
 * @param k          the penalty's multiplier, NaN for no "penalized"
 * @param threads    compute threads, 0 for all cores of the JVM that scores
 * @param backend    where the JVM that scores runs the model (--backend, --precision)
 * @param template   none, alpaca or a template file (null: none)
 * @param maxLength  longest sequence in tokens, 0 for the model's position limit
 * @param initHead   seed of a fresh score head (--init-head), or null
 */
public record ScoreSpec(String model, String adapter, boolean posterior, double k, Penalty penalty, int batchSize, int threads,
                        Backends.Choice backend, String template, boolean appendEos, int maxLength, Truncation truncation, Long initHead)
        implements Serializable {
    public ScoreSpec {
        if (model == null) throw new BrmException("a model directory is required");
        if (posterior && adapter == null) throw new BrmException("a posterior needs an adapter (brm laplace writes it beside one)");
        if (!Double.isNaN(k) && !(k >= 0 && Double.isFinite(k))) throw new BrmException("--k must be a number >= 0, got " + k);
        if (!Double.isNaN(k) && !posterior) throw new BrmException("--k needs an adapter with a posterior (brm laplace) and no --no-uncertainty");
        if (batchSize < 1 || threads < 0 || maxLength < 0) throw new BrmException("batch size, threads and max length must be positive");
        if (backend == null) throw new BrmException("a backend is required");
    }

    /**
     * brm score's defaults for this model and adapter: the adapter's posterior when it has one (checked
     * here, so the directories must be readable where this runs), no penalty, 16 sequences per batch, all
     * cores of the CPU, no template, the model's length limit and over-long lines an error.
     */
    public static ScoreSpec of(String model, String adapter) {
        return new ScoreSpec(model, adapter, adapter != null && Posterior.exists(Path.of(adapter)), Double.NaN, Penalty.STD, 16, 0,
                Backends.Choice.CPU, null, false, 0, Truncation.ERROR, null);
    }

    /** Adds "penalized" = μ − k·σ (STD) or μ − k·σ² (VAR). */
    public ScoreSpec withPenalty(double k, Penalty penalty) {
        return new ScoreSpec(model, adapter, posterior, k, penalty, batchSize, threads, backend, template, appendEos, maxLength, truncation, initHead);
    }

    public ScoreSpec withBatchSize(int batchSize) {
        return new ScoreSpec(model, adapter, posterior, k, penalty, batchSize, threads, backend, template, appendEos, maxLength, truncation, initHead);
    }

    /** Text lines: the template (none, alpaca or a file), --append-eos, --max-length (0: the model's) and --truncate. */
    public ScoreSpec withText(String template, boolean appendEos, int maxLength, Truncation truncation) {
        return new ScoreSpec(model, adapter, posterior, k, penalty, batchSize, threads, backend, template, appendEos, maxLength, truncation, initHead);
    }

    /** The same options on another backend (--backend, --precision). */
    public ScoreSpec withBackend(Backends.Choice backend) {
        return new ScoreSpec(model, adapter, posterior, k, penalty, batchSize, threads, backend, template, appendEos, maxLength, truncation, initHead);
    }

    /** The same options with another adapter (an ensemble member) and its posterior or none. */
    public ScoreSpec withAdapter(String adapter, boolean posterior) {
        return new ScoreSpec(model, adapter, posterior, k, penalty, batchSize, threads, backend, template, appendEos, maxLength, truncation, initHead);
    }

    /** Whether there is a "penalized" (k is a number). */
    public boolean penalized() {
        return !Double.isNaN(k);
    }

    /** "penalized" = μ − k·σ or μ − k·σ², from a sequence's μ and the σ² the penalty reads (raw or pool-relative). */
    public double penalized(float mean, double variance) {
        return penalty.apply(mean, variance, k);
    }

    /** What a loaded {@link Scorer} depends on: this spec without the penalty, which only post-processes μ and σ². */
    public ScoreSpec loadKey() {
        return penalized() ? withPenalty(Double.NaN, Penalty.STD) : this;
    }
}
