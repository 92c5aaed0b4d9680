package brm.backbone;

import brm.backend.Tensor;

/** A transformer's feed-forward block: {@link GeluMlp} or {@link SwiGluMlp}. */
public sealed interface Mlp permits GeluMlp, SwiGluMlp {
    /** out [rows, hidden] = mlp(x [rows, hidden]); intermediates stay in ws for backward. */
    void forward(Tensor x, Workspace ws, Tensor out);

    /** Whether any of its linears has a trained LoRA update. */
    boolean trainable();

    /**
     * Backward of the last forward on x (its buffers still in ws) for dOut [rows, hidden]: LoRA
     * gradients +=, and dx += d/dx when dx is non-null. dx may be dOut. grads: scratch.
     */
    void backward(Tensor x, Workspace ws, Workspace grads, Tensor dOut, Tensor dx);
}
