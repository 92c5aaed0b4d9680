package brm.score;

import brm.BrmException;
import brm.backbone.ModelConfig;
import brm.backend.Backends;
import brm.batch.LineEncoder;
import brm.batch.Template;
import brm.batch.TextRules;
import brm.laplace.BayesianRewardModel;
import brm.laplace.Predictive;
import brm.lora.PeftAdapter;
import brm.reward.RewardModel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;

/**
 * One loaded reward model and the encoder of its input records: batches of token sequences in,
 *   μ [n]          the reward (the MAP reward; with a posterior its predictive mean, the same number)
 *   σ² [n]         the Laplace predictive variance (with a posterior; else null)
 *   cov [n/2]      with pairs (sequences 2i, 2i+1), the covariance within each pair (with a posterior)
 * brm score, its ensemble members and brm spark-score's executors all score through this class, so
 * they write the same numbers. Not thread-safe: one call at a time (each uses all its threads).
 */
public final class Scorer implements AutoCloseable {
    private final LineEncoder encoder;
    private final BayesianRewardModel bayes;
    private final RewardModel map;

    private Scorer(LineEncoder encoder, BayesianRewardModel bayes, RewardModel map) {
        this.encoder = encoder;
        this.bayes = bayes;
        this.map = map;
    }

    /** Loads spec's model (and adapter, and posterior); {@code sequences} is the most sequences one {@link #score} call gets. */
    public static Scorer open(ScoreSpec spec, int sequences) {
        Path dir = Path.of(spec.model());
        if (!Files.isDirectory(dir)) throw new BrmException(dir + ": no such model directory");
        ModelConfig config = ModelConfig.read(dir);
        TextRules rules = TextRules.forModel(dir, config, Template.parse(spec.template()), spec.appendEos(), spec.maxLength(), spec.truncation());
        LineEncoder encoder = new LineEncoder(dir, rules, config.vocabSize(), true);
        int threads = spec.threads() == 0 ? Runtime.getRuntime().availableProcessors() : spec.threads();
        OptionalLong head = spec.initHead() == null ? OptionalLong.empty() : OptionalLong.of(spec.initHead());
        if (spec.posterior())
            return new Scorer(encoder, BayesianRewardModel.open(dir, Path.of(spec.adapter()), Backends.create(spec.backend(), threads), head), null);
        var adapter = spec.adapter() == null ? null : PeftAdapter.load(Path.of(spec.adapter()), config);
        var options = new RewardModel.Options(threads, Math.multiplyExact(sequences, rules.maxLength()), head);
        return new Scorer(encoder, null, RewardModel.open(dir, adapter, options, Backends.create(spec.backend(), threads)));
    }

    /** Input records ({"prompt", "response"[, "input"]} or {"input_ids"}) to token ids under the spec's text rules. */
    public LineEncoder encoder() {
        return encoder;
    }

    /** Whether {@link #score} gives σ² (the spec asked for the posterior). */
    public boolean uncertain() {
        return bayes != null;
    }

    /**
     * μ [n], σ² [n] (null without a posterior) and with pairs the within-pair covariance [n/2] (null
     * without a posterior); features, when non-null ([n][]), gets each sequence's pooled hidden state.
     */
    public Predictive.Batch score(List<int[]> sequences, boolean pairs, float[][] features) {
        if (bayes == null) return new Predictive.Batch(map.score(sequences, features), null, null);
        Predictive.Batch b = bayes.score(sequences, pairs);
        if (features != null) System.arraycopy(bayes.lastFeatures(), 0, features, 0, features.length);
        return b;
    }

    /** The predictive of the last {@link #score} batch (with a posterior): brm score --relative-by's coefficients. */
    public Predictive predictive() {
        if (bayes == null) throw new IllegalStateException("no posterior");
        return bayes.predictive();
    }

    @Override
    public void close() {
        if (bayes != null) bayes.close();
        else map.close();
    }
}
