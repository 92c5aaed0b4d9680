package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * One nn.Linear on the backend: y [rows, out] = x [rows, in] · Wᵀ + b, plus its LoRA update
 * s·(x·Aᵀ)·Bᵀ when an adapter targets it (kept unmerged, so W serves any adapter).
 * W and b are frozen; when training, the LoRA gradients accumulate into {@code gradient}.
 *
 * With LoRA dropout active the branch reads x̃ = dropout(x) (mask redrawn in backward), else x̃ = x:
 *   forward   t = x̃·Aᵀ,  y = x·Wᵀ + b + s·t·Bᵀ
 *   backward  u = dy·B:  dB += s·dyᵀ·t,  dA += s·uᵀ·x̃,  dx += dy·W + dropout(s·u·A)
 *             (with a probe, the probe sees x̃, u, t, dy instead of dA, dB accumulating)
 * The backend's fused LoRA ops run this unless dropout or a probe needs x̃, t and u themselves
 * (workspace buffers "lora.x<in>", "lora.t", "lora.u", "lora.dx<in>" of the context's scratch).
 *
 * @param lora     null when no adapter targets this module
 * @param gradient dA [r, in] and dB [out, r]; null unless this LoRA update is being trained
 * @param context  the model's dropout switch, probe and scratch; null unless training
 */
public record Linear(Backend backend, LinearModule module, Backend.Weight weight, Backend.Lora lora, Gradient gradient, LoraContext context) {
    /** The gradients of one LoRA update, dA [r, in] and dB [out, r], accumulated over backward calls. */
    public record Gradient(Tensor a, Tensor b) {}

    private boolean dropping() {
        return lora != null && context != null && context.dropping();
    }

    public void forward(Tensor x, Tensor y) {
        if (!dropping()) {
            backend.linear(x, weight, lora, y);
            return;
        }
        backend.linear(x, weight, null, y);
        backend.matmul(branch(x, dropped(x)), false, lora.b(), true, lora.scale(), 1f, y);
    }

    /** x̃ = dropout(x) into its scratch buffer, or x itself when not dropping. */
    private Tensor dropped(Tensor x) {
        if (!dropping()) return x;
        Tensor xd = context.scratch().get("lora.x" + x.cols(), x.rows(), x.cols());
        backend.dropout(x, context.p(), context.seedFor(module), xd);
        return xd;
    }

    /** t = x̃·Aᵀ [rows, r]. */
    private Tensor branch(Tensor x, Tensor xd) {
        Tensor t = context.scratch().get("lora.t", x.rows(), lora.r());
        backend.matmul(xd, false, lora.a(), true, 1f, 0f, t);
        return t;
    }

    /** For dy [rows, out] at input x [rows, in]: dx += dy·∂y/∂x (skipped when dx is null), LoRA gradients +=. */
    public void backward(Tensor x, Tensor dy, Tensor dx) {
        if (dx == null && gradient == null) return;
        LoraContext.Probe probe = context == null || lora == null ? null : context.probe();
        if (!dropping() && probe == null) {
            backend.linearBackward(x, weight, lora, dy, dx, gradient == null ? null : gradient.a(), gradient == null ? null : gradient.b());
            return;
        }
        if (dx != null) backend.linearBackward(x, weight, null, dy, dx, null, null);
        Tensor xd = dropped(x), t = branch(x, xd), u = context.scratch().get("lora.u", x.rows(), lora.r());
        float s = lora.scale();
        backend.matmul(dy, false, lora.b(), false, 1f, 0f, u);
        if (probe != null) probe.capture(this, xd, u, t, dy, s);
        else if (gradient != null) {
            backend.matmul(dy, true, t, false, s, 1f, gradient.b());
            backend.matmul(u, true, xd, false, s, 1f, gradient.a());
        }
        if (dx == null) return;
        if (!dropping()) {
            backend.matmul(u, false, lora.a(), false, s, 1f, dx);
            return;
        }
        Tensor g = context.scratch().get("lora.dx" + x.cols(), x.rows(), x.cols());
        backend.matmul(u, false, lora.a(), false, s, 0f, g);
        backend.dropout(g, context.p(), context.seedFor(module), g);
        backend.add(dx, g, dx);
    }

    /** Whether backward gives this layer parameter gradients. */
    public boolean trainable() {
        return gradient != null;
    }
}
