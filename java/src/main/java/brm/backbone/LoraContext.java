package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * What the trained LoRA linears of one model share while being differentiated: the LoRA dropout
 * switch (PEFT's lora_dropout: the branch reads dropout(x), a fresh mask per forward, redrawn from the
 * same seed in backward; off for evaluation), an optional {@link Probe} that sees each LoRA layer's
 * inputs and output gradients in backward (K-FAC factors, per-response Jacobians), and the scratch
 * buffers of the explicit (unfused) LoRA backward those need.
 */
public final class LoraContext {
    /**
     * Sees, in backward, the two layers of a trained LoRA update at one linear, per token [rows, ·]:
     *   lora_A: input x̃ [rows, in] (dropout(x) while dropping), output gradient g_A = scale · u, u = dy·B [rows, r]
     *   lora_B: input t = x̃·Aᵀ [rows, r],                           output gradient g_B = scale · dy [rows, out]
     * The tensors are only valid during the call.
     */
    public interface Probe {
        void capture(Linear linear, Tensor x, Tensor u, Tensor t, Tensor dy, float scale);
    }

    private final float dropout;
    private final Workspace scratch;
    private Long seed;
    private Probe probe;

    public LoraContext(Backend backend, float dropout) {
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
        this.dropout = dropout;
        this.scratch = new Workspace(backend);
    }

    /** Masks of the next forward and backward come from seed; null turns dropout off. */
    public void seed(Long seed) {
        this.seed = seed;
    }

    /**
     * The probe of the following backward passes; null for none. While a probe is set the LoRA
     * parameter gradients are not accumulated: probing passes (K-FAC, Jacobians) only need what the probe sees.
     */
    public void probe(Probe probe) {
        this.probe = probe;
    }

    Probe probe() {
        return probe;
    }

    float p() {
        return dropout;
    }

    Workspace scratch() {
        return scratch;
    }

    /** Whether the LoRA branches currently drop inputs. */
    boolean dropping() {
        return dropout > 0 && seed != null;
    }

    /** The mask seed of one linear: the step's seed mixed with the module's path. */
    long seedFor(LinearModule module) {
        return seed * 0x9E3779B97F4A7C15L + module.path().hashCode();
    }
}
