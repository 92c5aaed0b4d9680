package brm.train;

import brm.BrmException;
import brm.backbone.LinearModule;
import brm.backbone.ModelConfig;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The LoRA updates to train: rank r, lora_alpha (scale = alpha / r), dropout on the LoRA input, and
 * target_modules as PEFT matches a list (a module whose path equals an entry or ends with "." + entry).
 * The reward head is never a target: it trains whole (modules_to_save).
 *
 * Initialisation as PEFT's default (init_lora_weights=True): A [r, in] ~ U(−1/√in, 1/√in) (kaiming
 * uniform with a = √5), B = 0, so training starts from the base model's rewards.
 */
public record LoraSpec(int r, double alpha, double dropout, List<String> targets) {
    public LoraSpec {
        if (r <= 0) throw new BrmException("LoRA rank must be positive, got " + r);
        if (!(alpha > 0) || Double.isInfinite(alpha)) throw new BrmException("lora_alpha must be positive, got " + alpha);
        if (!(dropout >= 0 && dropout < 1)) throw new BrmException("LoRA dropout must be in [0, 1), got " + dropout);
        if (targets.isEmpty()) throw new BrmException("no LoRA target modules");
        targets = List.copyOf(targets);
    }

    public float scale() {
        return (float) (alpha / r);
    }

    /** The linears of the model the targets match, in model order; an entry matching none is an error. */
    public List<LinearModule> modules(ModelConfig config) {
        List<LinearModule> linears = config.linearModules().stream().filter(m -> !m.equals(config.score())).toList();
        List<LinearModule> matched = new ArrayList<>();
        for (LinearModule m : linears)
            if (targets.stream().anyMatch(t -> m.path().equals(t) || m.path().endsWith("." + t))) matched.add(m);
        for (String t : targets)
            if (linears.stream().noneMatch(m -> m.path().equals(t) || m.path().endsWith("." + t)))
                throw new BrmException("LoRA target \"" + t + "\" names no linear layer of this " + config.modelType() + " model (its linears end in "
                        + String.join(", ", linears.stream().map(m -> m.path().substring(m.path().lastIndexOf('.') + 1)).distinct().toList()) + ")");
        return matched;
    }

    /** Fresh LoRA updates for the matched modules, A drawn from seed in model order, B = 0; no head. */
    public LoraAdapter initial(ModelConfig config, long seed) {
        Random random = new Random(seed);
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (LinearModule m : modules(config)) {
            float[] a = new float[r * m.in()];
            double bound = 1 / Math.sqrt(m.in());
            for (int i = 0; i < a.length; i++) a[i] = (float) ((2 * random.nextDouble() - 1) * bound);
            layers.put(m.path(), new LoraLayer(m.path(), r, m.in(), m.out(), scale(), a, new float[m.out() * r]));
        }
        return new LoraAdapter(layers, null);
    }
}
