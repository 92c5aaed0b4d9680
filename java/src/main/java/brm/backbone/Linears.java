package brm.backbone;

import brm.BrmException;
import brm.backend.Backend;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Builds the {@link Linear}s of one model: shapes come from {@link ModelConfig#linearModules()}
 * (the one list of a model's linears), weights from the checkpoint, LoRA updates from the adapter.
 * An adapter layer that names no linear of the model, or has other dimensions, is refused.
 */
public final class Linears {
    private final Map<String, LinearModule> modules = new LinkedHashMap<>();
    private final Checkpoint checkpoint;
    private final Backend backend;
    private final LoraAdapter adapter;

    public Linears(ModelConfig config, Checkpoint checkpoint, Backend backend, LoraAdapter adapter) {
        for (LinearModule m : config.linearModules()) modules.put(m.path(), m);
        this.checkpoint = checkpoint;
        this.backend = backend;
        this.adapter = adapter;
        if (adapter == null) return;
        for (LoraLayer l : adapter.layers().values()) {
            LinearModule m = modules.get(l.module());
            if (m == null)
                throw new BrmException("adapter has a LoRA update for " + l.module() + ", which is not a linear layer of this "
                        + config.modelType() + " model");
            if (m.in() != l.in() || m.out() != l.out())
                throw new BrmException("adapter's LoRA update for " + l.module() + " maps " + l.in() + " -> " + l.out()
                        + " features but the layer maps " + m.in() + " -> " + m.out());
        }
    }

    /** The linear at {@code path}, W [out, in] (+ bias [out]) read from the checkpoint. */
    public Linear load(String path) {
        LinearModule m = module(path);
        float[] w = checkpoint.floats(path + ".weight", m.out(), m.in());
        float[] b = m.bias() ? checkpoint.floats(path + ".bias", m.out()) : null;
        return build(m, w, b);
    }

    /** The linear at {@code path} with W [out, in] given (no bias): a head that does not come from the checkpoint. */
    public Linear of(String path, float[] w) {
        return build(module(path), w, null);
    }

    private LinearModule module(String path) {
        LinearModule m = modules.get(path);
        if (m == null) throw new IllegalArgumentException("no linear " + path + " in this model");
        return m;
    }

    private Linear build(LinearModule m, float[] w, float[] b) {
        LoraLayer l = adapter == null ? null : adapter.layer(m.path());
        return new Linear(backend, m, backend.weight(w, b, m.out(), m.in(), false),
                l == null ? null : new Backend.Lora(backend.upload(l.a(), l.r(), l.in()), backend.upload(l.b(), l.out(), l.r()), l.scale()));
    }
}
