package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * Llama's MLP: y = down(silu(gate(x)) · up(x)), gate, up: hidden -> intermediate,
 * down: intermediate -> hidden. Scratch: workspace buffers "mlp.gate", "mlp.up".
 */
public record SwiGluMlp(Backend backend, Linear gate, Linear up, Linear down) {
    /** out [rows, hidden] = mlp(x [rows, hidden]). */
    public void forward(Tensor x, Workspace ws, Tensor out) {
        int rows = x.rows(), n = gate.module().out();
        Tensor g = ws.get("mlp.gate", rows, n), u = ws.get("mlp.up", rows, n);
        gate.forward(x, g);
        up.forward(x, u);
        backend.siluMul(g, u, g);
        down.forward(g, out);
    }
}
