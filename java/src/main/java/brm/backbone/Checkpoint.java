package brm.backbone;

import brm.io.ModelWeights;

import java.nio.file.Path;

/**
 * A model directory's weights under the tensor names of the *ForSequenceClassification model
 * ({@code gpt_neox.layers.0...}, {@code score.weight}). Hugging Face's base_model_prefix rule: a
 * checkpoint with no tensor under the prefix is a bare base model (GPTNeoXModel, LlamaModel,
 * BertModel save {@code layers.0...}), so the prefix is dropped when looking tensors up. Names
 * outside the base model ({@code score.weight}, {@code embed_out.weight}, {@code lm_head.weight}) are
 * looked up as they are. Values come back as FP32 whatever the stored dtype (F32, F16, BF16).
 */
public final class Checkpoint implements AutoCloseable {
    private final ModelWeights weights;
    private final String prefix;
    private final boolean bare;

    private Checkpoint(ModelWeights weights, String prefix, boolean bare) {
        this.weights = weights;
        this.prefix = prefix;
        this.bare = bare;
    }

    public static Checkpoint open(Path dir, ModelConfig config) {
        ModelWeights weights = ModelWeights.open(dir);
        String prefix = config.prefix();
        return new Checkpoint(weights, prefix, weights.names().stream().noneMatch(n -> n.startsWith(prefix)));
    }

    public Path dir() {
        return weights.dir();
    }

    private String key(String name) {
        return bare && name.startsWith(prefix) ? name.substring(prefix.length()) : name;
    }

    public boolean contains(String name) {
        return weights.contains(key(name));
    }

    /** Tensor {@code name} as FP32 row-major; a missing tensor or another shape is a BrmException naming both. */
    public float[] floats(String name, long... shape) {
        return weights.floats(key(name), shape);
    }

    @Override
    public void close() {
        weights.close();
    }
}
