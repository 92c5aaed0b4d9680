package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/** LlamaRMSNorm over the last dimension n: y = x / √(mean(x²) + ε) · weight; weight [1, n]. */
public record RmsNorm(Backend backend, Tensor weight, float eps) {
    static RmsNorm load(Backend backend, Checkpoint c, String path, int n, double eps) {
        return new RmsNorm(backend, backend.upload(c.floats(path + ".weight", n), 1, n), (float) eps);
    }

    /** out [rows, n] = rmsNorm(x + residual), adding residual into x first when non-null; out may be x. */
    public void forward(Tensor x, Tensor residual, Tensor out) {
        if (residual != null) backend.add(x, residual, x);
        backend.rmsNorm(x, weight, eps, out);
    }
}
