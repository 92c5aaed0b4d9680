package brm.backbone;

import brm.BrmException;
import brm.backend.Backend;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds the {@link Linear}s of one model: shapes come from {@link ModelConfig#linearModules()}
 * (the one list of a model's linears), weights from the checkpoint, LoRA updates from the adapter.
 * An adapter layer that names no linear of the model, or has other dimensions, is refused.
 *
 * With {@code training}, every weight is also prepared for backward and every LoRA update gets
 * gradient tensors and the model's {@link LoraContext}; {@link #trained()} lists them in model order.
 */
public final class Linears {
    private final Map<String, LinearModule> modules = new LinkedHashMap<>();
    private final Checkpoint checkpoint;
    private final Backend backend;
    private final LoraAdapter adapter;
    private final boolean training;
    private final LoraContext context;
    private final List<Linear> trained = new ArrayList<>();

    /** @param context null when scoring, the trained linears' shared context when training */
    public Linears(ModelConfig config, Checkpoint checkpoint, Backend backend, LoraAdapter adapter, LoraContext context) {
        for (LinearModule m : config.linearModules()) modules.put(m.path(), m);
        this.checkpoint = checkpoint;
        this.backend = backend;
        this.adapter = adapter;
        this.training = context != null;
        this.context = context;
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

    public boolean training() {
        return training;
    }

    /** The linear at {@code path}, W [out, in] (+ bias [out]) read from the checkpoint. */
    public Linear load(String path) {
        LinearModule m = modules.get(path);
        if (m == null) throw new IllegalArgumentException("no linear " + path + " in this model");
        float[] w = checkpoint.floats(path + ".weight", m.out(), m.in());
        float[] b = m.bias() ? checkpoint.floats(path + ".bias", m.out()) : null;
        LoraLayer l = adapter == null ? null : adapter.layer(m.path());
        Backend.Lora lora = l == null ? null
                : new Backend.Lora(backend.upload(l.a(), l.r(), l.in()), backend.upload(l.b(), l.out(), l.r()), l.scale());
        Linear.Gradient gradient = lora == null || !training ? null
                : new Linear.Gradient(backend.allocate(l.r(), l.in()), backend.allocate(l.out(), l.r()));
        Linear linear = new Linear(backend, m, backend.weight(w, b, m.out(), m.in(), training), lora, gradient, context);
        if (gradient != null) trained.add(linear);
        return linear;
    }

    /** The linears loaded so far whose LoRA updates train, in load (model) order. */
    public List<Linear> trained() {
        return List.copyOf(trained);
    }
}
