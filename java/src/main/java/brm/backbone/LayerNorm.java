package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * nn.LayerNorm over the last dimension n: y = (x - μ) / √(σ² + ε) · weight + bias, with μ and σ² the
 * mean and biased variance of the row. weight, bias [1, n].
 */
public record LayerNorm(Backend backend, Tensor weight, Tensor bias, float eps) {
    /** Reads {@code path.weight} and {@code path.bias} [n] (or the old TF-converted names {@code gamma}, {@code beta}). */
    static LayerNorm load(Backend backend, Checkpoint c, String path, int n, double eps) {
        boolean old = !c.contains(path + ".weight") && c.contains(path + ".gamma");
        float[] w = c.floats(path + (old ? ".gamma" : ".weight"), n);
        float[] b = c.floats(path + (old ? ".beta" : ".bias"), n);
        return new LayerNorm(backend, backend.upload(w, 1, n), backend.upload(b, 1, n), (float) eps);
    }

    /** out [rows, n] = layerNorm(x + residual), adding residual into x first when non-null; out may be x. */
    public void forward(Tensor x, Tensor residual, Tensor out) {
        if (residual != null) backend.add(x, residual, x);
        backend.layerNorm(x, weight, bias, eps, out);
    }
}
