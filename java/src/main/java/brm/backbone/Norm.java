package brm.backbone;

import brm.backend.Tensor;

/** A per-row normalisation with frozen parameters: {@link LayerNorm} or {@link RmsNorm}. */
public sealed interface Norm permits LayerNorm, RmsNorm {
    /** out [rows, n] = norm(x); out may be x. */
    void forward(Tensor x, Tensor out);

    /** dx [rows, n] += dy · ∂y/∂x at input x. */
    void backward(Tensor x, Tensor dy, Tensor dx);
}
