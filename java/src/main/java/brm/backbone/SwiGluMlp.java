package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * Llama's MLP: y = down(silu(gate(x)) · up(x)), gate, up: hidden -> intermediate,
 * down: intermediate -> hidden.
 * Backward: dH = dy·∂down; (dG, dU) = siluMul'(g, u)·dH; dx = dG·∂gate + dU·∂up.
 * Workspace buffers (kept for backward): "mlp.gate", "mlp.up", "mlp.act" = silu(gate)·up.
 */
public record SwiGluMlp(Backend backend, Linear gate, Linear up, Linear down) implements Mlp {
    @Override
    public void forward(Tensor x, Workspace ws, Tensor out) {
        int rows = x.rows(), n = gate.module().out();
        Tensor g = ws.get("mlp.gate", rows, n), u = ws.get("mlp.up", rows, n), h = ws.get("mlp.act", rows, n);
        gate.forward(x, g);
        up.forward(x, u);
        backend.siluMul(g, u, h);
        down.forward(h, out);
    }

    @Override
    public boolean trainable() {
        return gate.trainable() || up.trainable() || down.trainable();
    }

    @Override
    public void backward(Tensor x, Workspace ws, Workspace grads, Tensor dOut, Tensor dx) {
        boolean throughInputs = dx != null || gate.trainable() || up.trainable();
        int rows = x.rows(), n = gate.module().out();
        Tensor dH = throughInputs ? grads.zeroed("mlp.dact", rows, n) : null;
        down.backward(ws.get("mlp.act", rows, n), dOut, dH);
        if (!throughInputs) return;
        Tensor dG = grads.get("mlp.dgate", rows, n), dU = grads.get("mlp.dup", rows, n);
        backend.siluMulBackward(ws.get("mlp.gate", rows, n), ws.get("mlp.up", rows, n), dH, dG, dU);
        gate.backward(x, dG, dx);
        up.backward(x, dU, dx);
    }
}
