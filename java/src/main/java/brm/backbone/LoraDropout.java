package brm.backbone;

/**
 * LoRA dropout while training (PEFT's lora_dropout): the LoRA branch of each trained linear reads
 * dropout(x) instead of x, y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ, with a fresh mask per forward.
 * One switch per model: the trainer sets a seed before each micro-batch's forward (backward redraws
 * the same masks from it) and clears it for evaluation, when the branch reads x itself.
 */
public final class LoraDropout {
    private final float p;
    private Long seed;

    public LoraDropout(float p) {
        if (!(p >= 0 && p < 1)) throw new IllegalArgumentException("dropout must be in [0, 1), got " + p);
        this.p = p;
    }

    public float p() {
        return p;
    }

    /** Masks of the next forward and backward come from seed; null turns dropout off. */
    public void seed(Long seed) {
        this.seed = seed;
    }

    /** Whether the LoRA branches currently drop inputs. */
    boolean active() {
        return p > 0 && seed != null;
    }

    /** The mask seed of one linear: the step's seed mixed with the module's path. */
    long seedFor(LinearModule module) {
        return seed * 0x9E3779B97F4A7C15L + module.path().hashCode();
    }
}
