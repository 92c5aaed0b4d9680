package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * One nn.Linear on the backend: y [rows, out] = x [rows, in] · Wᵀ + b, plus its LoRA update
 * scale·(x·Aᵀ)·Bᵀ when an adapter targets it (kept unmerged, so W serves any adapter).
 *
 * @param lora null when no adapter targets this module
 */
public record Linear(Backend backend, LinearModule module, Backend.Weight weight, Backend.Lora lora) {
    public void forward(Tensor x, Tensor y) {
        backend.linear(x, weight, lora, y);
    }
}
