package brm.head;

import brm.BrmException;
import brm.backbone.Checkpoint;
import brm.backbone.ModelConfig;
import brm.backbone.Workspace;
import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Pooling;
import brm.backend.Tensor;
import brm.lora.LoraAdapter;

import java.util.OptionalLong;
import java.util.Random;

/**
 * The reward head: one scalar per sequence, r = score · pool(h), score [1, hidden] without bias
 * (HF's *ForSequenceClassification score with num_labels 1). Decoders pool the last token (it has
 * attended to the whole sequence); BERT pools by its config's {@code pooling}, mean or first token.
 * Backward, for dr [seqs]: dscore += drᵀ·pooled, dh = poolᵀ(dr·score).
 *
 * Where score comes from, first match wins: the adapter's own head (PEFT modules_to_save), a fresh
 * head when a seed is given (N(0, initializer_range²) per element from java.util.Random(seed), so a
 * seed always gives the same head), the directory's score.weight.
 */
public final class RewardHead {
    private final Backend backend;
    private final Tensor score;
    private final Tensor gradient;
    private final Pooling pooling;
    private final Workspace ws;

    private RewardHead(Backend backend, Tensor score, Tensor gradient, Pooling pooling) {
        this.backend = backend;
        this.score = score;
        this.gradient = gradient;
        this.pooling = pooling;
        this.ws = new Workspace(backend);
    }

    /** With {@code training}, score gets a gradient tensor (see {@link #gradient()}). */
    public static RewardHead load(ModelConfig config, Checkpoint ckpt, Backend backend, LoraAdapter adapter,
                                  OptionalLong initSeed, boolean training) {
        int hidden = config.hiddenSize();
        String name = config.score().path() + ".weight";
        float[] w;
        if (adapter != null && adapter.scoreWeight() != null) {
            w = adapter.scoreWeight();
            if (w.length != hidden) throw new BrmException("adapter's score head has " + w.length + " values, the model's hidden size is " + hidden);
        } else if (initSeed.isPresent()) {
            w = freshHead(initSeed.getAsLong(), config.initializerRange(), hidden);
        } else if (ckpt.contains(name)) {
            w = ckpt.floats(name, 1, hidden);
        } else {
            throw new BrmException(ckpt.dir() + ": has no " + name + "; pass --init-head SEED to start from a fresh head");
        }
        return new RewardHead(backend, backend.upload(w, 1, hidden), training ? backend.allocate(1, hidden) : null, config.pooling());
    }

    /** score [hidden] ~ N(0, std²), drawn from seed. */
    static float[] freshHead(long seed, double std, int hidden) {
        Random random = new Random(seed);
        float[] w = new float[hidden];
        for (int i = 0; i < hidden; i++) w[i] = (float) (random.nextGaussian() * std);
        return w;
    }

    /** The head's weight score [1, hidden]. */
    public Tensor score() {
        return score;
    }

    /** dscore [1, hidden], accumulated by {@link #backward}; null unless loaded for training. */
    public Tensor gradient() {
        return gradient;
    }

    /** rewards [seqs] from the last hidden states [tokens, hidden] of a packed batch. */
    public float[] rewards(Packing p, Tensor hidden) {
        return backend.download(forward(p, hidden));
    }

    /** rewards [seqs, 1] on the backend (a workspace buffer, at the backend's precision). */
    public Tensor forward(Packing p, Tensor hidden) {
        Tensor pooled = ws.get("pooled", p.seqs(), hidden.cols()), r = ws.get("reward", p.seqs(), 1);
        backend.pool(p, hidden, pooling, pooled);
        backend.matmul(pooled, false, score, true, 1f, 0f, r);
        return r;
    }

    /** The pooled hidden states [seqs, hidden] of the last forward: each reward's Jacobian with respect to score. */
    public Tensor pooled(int seqs) {
        return ws.get("pooled", seqs, score.cols());
    }

    /**
     * Backward of the last {@link #rewards} for dRewards [seqs]: dscore += Σ_s dr_s·pooled_s (when
     * training), and returns dh [tokens, hidden] (a workspace buffer).
     */
    public Tensor backward(Packing p, float[] dRewards) {
        int hidden = score.cols();
        Tensor dr = ws.get("dreward", p.seqs(), 1), dPooled = ws.get("dpooled", p.seqs(), hidden), dh = ws.get("dhidden", p.tokens(), hidden);
        backend.write(dRewards, dr);
        if (gradient != null) backend.matmul(dr, true, ws.get("pooled", p.seqs(), hidden), false, 1f, 1f, gradient);
        backend.matmul(dr, false, score, false, 1f, 0f, dPooled);
        backend.poolBackward(p, pooling, dPooled, dh);
        return dh;
    }
}
