package brm.lora;

import java.util.Map;

/**
 * A LoRA adapter: the low-rank updates by module path, and optionally a reward head that replaces
 * the model directory's {@code score.weight} ([1, hidden]).
 */
public record LoraAdapter(Map<String, LoraLayer> layers, float[] scoreWeight) {
    public LoraAdapter {
        layers = Map.copyOf(layers);
    }

    /** The update for the linear at {@code module}, or null when that module has none. */
    public LoraLayer layer(String module) {
        return layers.get(module);
    }
}
