package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * The GELU MLP of GPT-NeoX and BERT: y = down(gelu(up(x))), up: hidden -> intermediate,
 * down: intermediate -> hidden, gelu exact (erf). Scratch: workspace buffer "mlp.hidden".
 */
public record GeluMlp(Backend backend, Linear up, Linear down) {
    /** out [rows, hidden] = mlp(x [rows, hidden]). */
    public void forward(Tensor x, Workspace ws, Tensor out) {
        Tensor h = ws.get("mlp.hidden", x.rows(), up.module().out());
        up.forward(x, h);
        backend.gelu(h, h);
        down.forward(h, out);
    }
}
