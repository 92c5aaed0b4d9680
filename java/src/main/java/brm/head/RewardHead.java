package brm.head;

import brm.BrmException;
import brm.backbone.Checkpoint;
import brm.backbone.Linear;
import brm.backbone.Linears;
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
 *
 * Where score comes from, first match wins: the adapter's own head (PEFT modules_to_save), a fresh
 * head when a seed is given (N(0, initializer_range²) per element from java.util.Random(seed), so a
 * seed always gives the same head), the directory's score.weight.
 */
public final class RewardHead {
    private final Backend backend;
    private final Linear score;
    private final Pooling pooling;
    private final Workspace ws;

    private RewardHead(Backend backend, Linear score, Pooling pooling) {
        this.backend = backend;
        this.score = score;
        this.pooling = pooling;
        this.ws = new Workspace(backend);
    }

    public static RewardHead load(ModelConfig config, Checkpoint ckpt, Linears linears, Backend backend,
                                  LoraAdapter adapter, OptionalLong initSeed) {
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
        return new RewardHead(backend, linears.of(config.score().path(), w), config.pooling());
    }

    /** score [hidden] ~ N(0, std²), drawn from seed. */
    static float[] freshHead(long seed, double std, int hidden) {
        Random random = new Random(seed);
        float[] w = new float[hidden];
        for (int i = 0; i < hidden; i++) w[i] = (float) (random.nextGaussian() * std);
        return w;
    }

    /** rewards [seqs] from the last hidden states [tokens, hidden] of a packed batch. */
    public float[] rewards(Packing p, Tensor hidden) {
        Tensor pooled = ws.get("pooled", p.seqs(), hidden.cols()), r = ws.get("reward", p.seqs(), 1);
        backend.pool(p, hidden, pooling, pooled);
        score.forward(pooled, r);
        return backend.download(r);
    }
}
