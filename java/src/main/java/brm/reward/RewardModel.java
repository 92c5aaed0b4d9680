package brm.reward;

import brm.BrmException;
import brm.backbone.Backbone;
import brm.backbone.LinearModule;
import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.Backends;
import brm.backend.Packing;
import brm.head.RewardHead;
import brm.lora.LoraAdapter;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;

/**
 * A reward model: a Hugging Face model directory (GPT-NeoX, Llama, BERT) plus an optional LoRA
 * adapter, scoring token sequences with one scalar each (see {@link RewardHead}).
 *
 * Sequences are scored in packed batches of at most maxBatchTokens tokens (a longer sequence goes
 * alone): no padding, and each sequence's reward is independent of what it is batched with. The
 * adapter stays unmerged. Not thread-safe: one {@code score} at a time (it uses all the threads).
 */
public final class RewardModel implements AutoCloseable {
    /**
     * @param threads        compute threads
     * @param maxBatchTokens most tokens per packed batch (bounds activation memory)
     * @param initHeadSeed   when present, score starts from a fresh N(0, initializer_range²) head drawn
     *                       from this seed instead of the directory's (an adapter's head still wins)
     */
    public record Options(int threads, int maxBatchTokens, OptionalLong initHeadSeed) {
        public Options {
            if (threads < 1) throw new BrmException("threads must be at least 1, got " + threads);
            if (maxBatchTokens < 1) throw new BrmException("max batch tokens must be at least 1, got " + maxBatchTokens);
        }

        public static Options defaults() {
            return new Options(Runtime.getRuntime().availableProcessors(), 4096, OptionalLong.empty());
        }
    }

    private final Path dir;
    private final ModelConfig config;
    private final Backend backend;
    private final Backbone backbone;
    private final RewardHead head;
    private final int maxBatchTokens;

    private RewardModel(Path dir, ModelConfig config, Backend backend, Backbone backbone, RewardHead head, int maxBatchTokens) {
        this.dir = dir;
        this.config = config;
        this.backend = backend;
        this.backbone = backbone;
        this.head = head;
        this.maxBatchTokens = maxBatchTokens;
    }

    /** Loads dir's config.json and weights (converted to FP32) on the selected backend; adapter may be null. */
    public static RewardModel open(Path dir, LoraAdapter adapter, Options options) {
        return open(dir, adapter, options, Backends.create(options.threads()));
    }

    /** As {@link #open(Path, LoraAdapter, Options)} on the given backend, which the model then owns (options.threads() unused). */
    public static RewardModel open(Path dir, LoraAdapter adapter, Options options, Backend backend) {
        return Loader.open(dir, adapter, backend, null, (config, ckpt, linears, be, backbone) -> new RewardModel(dir, config,
                be, backbone, RewardHead.load(config, ckpt, be, adapter, options.initHeadSeed(), false), options.maxBatchTokens()));
    }

    public ModelConfig config() {
        return config;
    }

    /** Every nn.Linear of the model by its *ForSequenceClassification path (what adapters target). */
    public List<LinearModule> linearModules() {
        return config.linearModules();
    }

    /** rewards [n] for n sequences of token ids [T_i], in order. */
    public float[] score(List<int[]> sequences) {
        return score(sequences, null);
    }

    /**
     * rewards [n], and when features is non-null ([n][]), each sequence's pooled hidden state [hidden] (the
     * vector the head reads: the reward model's own features of the response) into features[i].
     */
    public float[] score(List<int[]> sequences, float[][] features) {
        float[] rewards = new float[sequences.size()];
        Inputs.batches(config, dir, sequences, maxBatchTokens, (first, batch) -> {
            Packing p = Packing.of(batch);
            float[] r = head.rewards(p, backbone.forward(p, Inputs.concat(batch)));
            System.arraycopy(r, 0, rewards, first, r.length);
            if (features == null) return;
            float[] pooled = backend.download(head.pooled(p.seqs()));
            int h = config.hiddenSize();
            for (int s = 0; s < r.length; s++) features[first + s] = Arrays.copyOfRange(pooled, s * h, (s + 1) * h);
        });
        return rewards;
    }

    @Override
    public void close() {
        backend.close();
    }
}
