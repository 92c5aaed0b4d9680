package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * One nn.Linear on the backend: y [rows, out] = x [rows, in] · Wᵀ + b, plus its LoRA update
 * scale·(x·Aᵀ)·Bᵀ when an adapter targets it (kept unmerged, so W serves any adapter).
 * W and b are frozen; when training, the LoRA gradients accumulate into {@code gradient}.
 *
 * @param lora     null when no adapter targets this module
 * @param gradient dA [r, in] and dB [out, r]; null unless this LoRA update is being trained
 */
public record Linear(Backend backend, LinearModule module, Backend.Weight weight, Backend.Lora lora, Gradient gradient) {
    /** The gradients of one LoRA update, dA [r, in] and dB [out, r], accumulated over backward calls. */
    public record Gradient(Tensor a, Tensor b) {}

    public void forward(Tensor x, Tensor y) {
        backend.linear(x, weight, lora, y);
    }

    /** For dy [rows, out] at input x [rows, in]: dx += dy·∂y/∂x (skipped when dx is null), LoRA gradients +=. */
    public void backward(Tensor x, Tensor dy, Tensor dx) {
        if (dx == null && gradient == null) return;
        backend.linearBackward(x, weight, lora, dy, dx, gradient == null ? null : gradient.a(), gradient == null ? null : gradient.b());
    }

    /** Whether backward gives this layer parameter gradients. */
    public boolean trainable() {
        return gradient != null;
    }
}
