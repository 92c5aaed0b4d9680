package brm.reward;

import brm.BrmException;
import brm.backbone.Backbone;
import brm.backbone.KvCache;
import brm.backbone.ModelConfig;
import brm.backbone.Workspace;
import brm.backend.Backend;
import brm.backend.Backends;
import brm.backend.Packing;
import brm.backend.Pooling;
import brm.backend.Tensor;
import brm.head.LmHead;
import brm.lora.LoraAdapter;

import java.nio.file.Path;
import java.util.List;

/**
 * A decoder (GPT-NeoX, Llama) as a language model: next-token logits from the same backbone as
 * {@link RewardModel}, through embed_out / lm_head or the tied input embedding, over whole sequences or,
 * for decoding, over new tokens with the past ones in a {@link KvCache}. Not thread-safe.
 */
public final class CausalLM implements AutoCloseable {
    private final Path dir;
    private final ModelConfig config;
    private final Backend backend;
    private final Backbone backbone;
    private final LmHead head;
    private final Workspace ws;

    private CausalLM(Path dir, ModelConfig config, Backend backend, Backbone backbone, LmHead head) {
        this.dir = dir;
        this.config = config;
        this.backend = backend;
        this.backbone = backbone;
        this.head = head;
        this.ws = new Workspace(backend);
    }

    /** Loads a decoder directory; adapter (may be null) applies its LoRA updates to the backbone. */
    public static CausalLM open(Path dir, LoraAdapter adapter, int threads) {
        return open(dir, adapter, Backends.create(threads));
    }

    /** As {@link #open(Path, LoraAdapter, int)} on the given backend, which the model then owns. */
    public static CausalLM open(Path dir, LoraAdapter adapter, Backend backend) {
        return Loader.open(dir, adapter, backend, null, (config, ckpt, linears, be, backbone) ->
                new CausalLM(dir, config, be, backbone, LmHead.load(config, ckpt, be)));
    }

    public ModelConfig config() {
        return config;
    }

    /** logits [vocab] for the token after ids. */
    public float[] lastLogits(int[] ids) {
        Packing p = pack(ids);
        Tensor last = ws.get("last", 1, config.hiddenSize()), logits = ws.get("logits", 1, head.vocabSize());
        backend.pool(p, backbone.forward(p, ids), Pooling.LAST, last);
        head.forward(last, logits);
        return backend.download(logits);
    }

    /** logits [T][vocab]: row t predicts the token after ids[0..t]. */
    public float[][] logits(int[] ids) {
        Packing p = pack(ids);
        Tensor logits = ws.get("logits", ids.length, head.vocabSize());
        head.forward(backbone.forward(p, ids), logits);
        float[] flat = backend.download(logits);
        int vocab = head.vocabSize();
        float[][] rows = new float[ids.length][];
        for (int t = 0; t < ids.length; t++) rows[t] = java.util.Arrays.copyOfRange(flat, t * vocab, (t + 1) * vocab);
        return rows;
    }

    /** An empty KV cache for {@code slots} sequences of up to {@code capacity} ≤ max_position_embeddings tokens each. */
    public KvCache cache(int slots, int capacity) {
        if (capacity > config.maxPositionEmbeddings())
            throw new BrmException("a KV cache of " + capacity + " positions exceeds max_position_embeddings " + config.maxPositionEmbeddings()
                    + " of " + dir.resolve(ModelConfig.FILE));
        return backbone.cache(slots, capacity);
    }

    /**
     * into [seqs·vocab], row s = the logits after the last token of sequence s of p, where sequence s continues
     * the one held in cache slot slots[s] with its rows of ids [tokens] at positions p.positions() (see
     * {@link KvCache}); their keys and values join the cache.
     */
    public void nextLogits(Packing p, int[] ids, KvCache cache, int[] slots, float[] into) {
        for (int r = 0; r < ids.length; r++)
            if (ids[r] < 0 || ids[r] >= config.vocabSize())
                throw new BrmException("token id " + ids[r] + " is outside the vocabulary (vocab_size " + config.vocabSize() + " of " + dir.resolve(ModelConfig.FILE) + ")");
        Tensor last = ws.get("last", p.seqs(), config.hiddenSize()), logits = ws.get("logits", p.seqs(), head.vocabSize());
        backend.pool(p, backbone.forward(p, ids, cache, slots), Pooling.LAST, last);
        head.forward(last, logits);
        backend.download(logits, into);
    }

    private Packing pack(int[] ids) {
        Inputs.check(config, dir, 0, ids);
        return Packing.of(List.of(ids));
    }

    @Override
    public void close() {
        backend.close();
    }
}
