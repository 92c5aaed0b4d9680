package brm.reward;

import brm.backbone.Backbone;
import brm.backbone.Checkpoint;
import brm.backbone.Linears;
import brm.backbone.LoraContext;
import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.Backends;
import brm.lora.LoraAdapter;

import java.nio.file.Path;

/** What every model API loads the same way: config, backend, the backbone with its (LoRA) linears. */
final class Loader {
    private Loader() {}

    /** Builds a model API from the loaded parts; the checkpoint is open during the call only. */
    @FunctionalInterface
    interface Build<T> {
        T build(ModelConfig config, Checkpoint ckpt, Linears linears, Backend backend, Backbone backbone);
    }

    /** Loads dir's config.json and weights (converted to FP32) for scoring on the selected backend ({@link Backends}); adapter may be null. */
    static <T> T open(Path dir, LoraAdapter adapter, int threads, Build<T> build) {
        return open(dir, adapter, Backends.create(threads), null, build);
    }

    /**
     * As {@link #open(Path, LoraAdapter, int, Build)} on the given backend, which the model then owns.
     * With a LoRA context (training), the adapter's LoRA updates get gradients and the backbone keeps
     * its activations for backward.
     */
    static <T> T open(Path dir, LoraAdapter adapter, Backend backend, LoraContext training, Build<T> build) {
        try {
            ModelConfig config = ModelConfig.read(dir);
            try (Checkpoint ckpt = Checkpoint.open(dir, config)) {
                Linears linears = new Linears(config, ckpt, backend, adapter, training);
                return build.build(config, ckpt, linears, backend, Backbone.load(config, ckpt, linears, backend));
            }
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }
}
