package brm.reward;

import brm.backbone.Backbone;
import brm.backbone.ModelConfig;
import brm.backbone.Workspace;
import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;
import brm.lora.LoraAdapter;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Sentence embeddings: e = pool(h) over the last hidden states h [T, hidden] of each sequence, by the
 * model's pooling (BERT: config.json's {@code pooling}, mean or cls; decoders: the last token), then
 * optionally e / ‖e‖₂. The same backbone and pooled vector the reward head reads, without the head.
 * Not thread-safe.
 */
public final class SentenceEncoder implements AutoCloseable {
    private final Path dir;
    private final ModelConfig config;
    private final Backend backend;
    private final Backbone backbone;
    private final int maxBatchTokens;
    private final Workspace ws;

    private SentenceEncoder(Path dir, ModelConfig config, Backend backend, Backbone backbone, int maxBatchTokens) {
        this.dir = dir;
        this.config = config;
        this.backend = backend;
        this.backbone = backbone;
        this.maxBatchTokens = maxBatchTokens;
        this.ws = new Workspace(backend);
    }

    /** Loads a model directory; adapter (may be null) applies its LoRA updates to the backbone. */
    public static SentenceEncoder open(Path dir, LoraAdapter adapter, int threads, int maxBatchTokens) {
        return Loader.open(dir, adapter, threads, (config, ckpt, linears, backend, backbone) ->
                new SentenceEncoder(dir, config, backend, backbone, maxBatchTokens));
    }

    public ModelConfig config() {
        return config;
    }

    /** embeddings [n][hidden] for n sequences, in order; L2-normalised when normalize is set. */
    public float[][] embed(List<int[]> sequences, boolean normalize) {
        float[][] out = new float[sequences.size()][];
        int hidden = config.hiddenSize();
        Inputs.batches(config, dir, sequences, maxBatchTokens, (first, batch) -> {
            Packing p = Packing.of(batch);
            Tensor pooled = ws.get("pooled", p.seqs(), hidden);
            backend.pool(p, backbone.forward(p, Inputs.concat(batch)), config.pooling(), pooled);
            float[] flat = backend.download(pooled);
            for (int s = 0; s < batch.size(); s++) {
                float[] e = Arrays.copyOfRange(flat, s * hidden, (s + 1) * hidden);
                if (normalize) normalizeInPlace(e);
                out[first + s] = e;
            }
        });
        return out;
    }

    /** e / max(‖e‖₂, 1e-12), as torch.nn.functional.normalize does. */
    static void normalizeInPlace(float[] e) {
        double sq = 0;
        for (float v : e) sq += (double) v * v;
        float inv = (float) (1 / Math.max(Math.sqrt(sq), 1e-12));
        for (int i = 0; i < e.length; i++) e[i] *= inv;
    }

    @Override
    public void close() {
        backend.close();
    }
}
