package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * One nn.Linear on the backend: y [rows, out] = x [rows, in] · Wᵀ + b, plus its LoRA update
 * s·(x·Aᵀ)·Bᵀ when an adapter targets it (kept unmerged, so W serves any adapter).
 * W and b are frozen; when training, the LoRA gradients accumulate into {@code gradient}.
 *
 * With LoRA dropout active the branch reads x̃ = dropout(x) (mask redrawn in backward):
 *   forward   t = x̃·Aᵀ,  y = x·Wᵀ + b + s·t·Bᵀ
 *   backward  u = dy·B:  dB += s·dyᵀ·t,  dA += s·uᵀ·x̃,  dx += dy·W + dropout(s·u·A)
 * Scratch for that path: workspace buffers "lora.x<in>" [rows, in], "lora.t" and "lora.u" [rows, r].
 *
 * @param lora     null when no adapter targets this module
 * @param gradient dA [r, in] and dB [out, r]; null unless this LoRA update is being trained
 * @param dropout  the model's LoRA dropout switch; null unless training
 * @param scratch  buffers of the dropout path; null unless training
 */
public record Linear(Backend backend, LinearModule module, Backend.Weight weight, Backend.Lora lora, Gradient gradient,
                     LoraDropout dropout, Workspace scratch) {
    /** The gradients of one LoRA update, dA [r, in] and dB [out, r], accumulated over backward calls. */
    public record Gradient(Tensor a, Tensor b) {}

    private boolean dropping() {
        return lora != null && dropout != null && dropout.active();
    }

    public void forward(Tensor x, Tensor y) {
        if (!dropping()) {
            backend.linear(x, weight, lora, y);
            return;
        }
        backend.linear(x, weight, null, y);
        Tensor t = droppedBranch(x);
        backend.matmul(t, false, lora.b(), true, lora.scale(), 1f, y);
    }

    /** dropout(x)'s buffer [rows, in], named by width since linears of several widths share the workspace. */
    private Tensor dropped(Tensor x) {
        return scratch.get("lora.x" + x.cols(), x.rows(), x.cols());
    }

    /** t = dropout(x)·Aᵀ [rows, r], with dropout(x) left in {@link #dropped}. */
    private Tensor droppedBranch(Tensor x) {
        Tensor xd = dropped(x), t = scratch.get("lora.t", x.rows(), lora.r());
        backend.dropout(x, dropout.p(), dropout.seedFor(module), xd);
        backend.matmul(xd, false, lora.a(), true, 1f, 0f, t);
        return t;
    }

    /** For dy [rows, out] at input x [rows, in]: dx += dy·∂y/∂x (skipped when dx is null), LoRA gradients +=. */
    public void backward(Tensor x, Tensor dy, Tensor dx) {
        if (dx == null && gradient == null) return;
        if (!dropping()) {
            backend.linearBackward(x, weight, lora, dy, dx, gradient == null ? null : gradient.a(), gradient == null ? null : gradient.b());
            return;
        }
        if (dx != null) backend.linearBackward(x, weight, null, dy, dx, null, null);
        Tensor t = droppedBranch(x), xd = dropped(x);
        Tensor u = scratch.get("lora.u", x.rows(), lora.r());
        float s = lora.scale();
        backend.matmul(dy, false, lora.b(), false, 1f, 0f, u);
        if (gradient != null) {
            backend.matmul(dy, true, t, false, s, 1f, gradient.b());
            backend.matmul(u, true, xd, false, s, 1f, gradient.a());
        }
        if (dx == null) return;
        backend.matmul(u, false, lora.a(), false, s, 0f, xd);
        backend.dropout(xd, dropout.p(), dropout.seedFor(module), xd);
        backend.add(dx, xd, dx);
    }

    /** Whether backward gives this layer parameter gradients. */
    public boolean trainable() {
        return gradient != null;
    }
}
