package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * The GELU MLP of GPT-NeoX and BERT: y = down(gelu(up(x))), up: hidden -> intermediate,
 * down: intermediate -> hidden, gelu exact (erf).
 * Backward: dAct = dy·∂down, dPre = dAct · gelu'(pre), dx = dPre·∂up.
 * Workspace buffers (kept for backward): "mlp.pre" = up(x), "mlp.act" = gelu(pre).
 */
public record GeluMlp(Backend backend, Linear up, Linear down) implements Mlp {
    @Override
    public void forward(Tensor x, Workspace ws, Tensor out) {
        Tensor pre = ws.get("mlp.pre", x.rows(), up.module().out()), act = ws.get("mlp.act", x.rows(), up.module().out());
        up.forward(x, pre);
        backend.gelu(pre, act);
        down.forward(act, out);
    }

    @Override
    public boolean trainable() {
        return up.trainable() || down.trainable();
    }

    @Override
    public void backward(Tensor x, Workspace ws, Workspace grads, Tensor dOut, Tensor dx) {
        boolean throughUp = dx != null || up.trainable();
        int rows = x.rows(), n = up.module().out();
        Tensor dAct = throughUp ? grads.zeroed("mlp.dact", rows, n) : null;
        down.backward(ws.get("mlp.act", rows, n), dOut, dAct);
        if (!throughUp) return;
        backend.geluBackward(ws.get("mlp.pre", rows, n), dAct, dAct);
        up.backward(x, dAct, dx);
    }
}
