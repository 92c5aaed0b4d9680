package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * nn.LayerNorm over the last dimension n: y = (x - μ) / √(σ² + ε) · weight + bias, with μ and σ² the
 * mean and biased variance of the row. weight, bias [1, n], frozen.
 * Backward: with x̂ = (x - μ)·rstd, g = dy·weight: dx = rstd · (g - mean(g) - x̂·mean(g·x̂)).
 */
public record LayerNorm(Backend backend, Tensor weight, Tensor bias, float eps) implements Norm {
    /** Reads {@code path.weight} and {@code path.bias} [n] (or the old TF-converted names {@code gamma}, {@code beta}). */
    static LayerNorm load(Backend backend, Checkpoint c, String path, int n, double eps) {
        boolean old = !c.contains(path + ".weight") && c.contains(path + ".gamma");
        float[] w = c.floats(path + (old ? ".gamma" : ".weight"), n);
        float[] b = c.floats(path + (old ? ".beta" : ".bias"), n);
        return new LayerNorm(backend, backend.upload(w, 1, n), backend.upload(b, 1, n), (float) eps);
    }

    @Override
    public void forward(Tensor x, Tensor out) {
        backend.layerNorm(x, weight, bias, eps, out);
    }

    @Override
    public void backward(Tensor x, Tensor dy, Tensor dx) {
        backend.layerNormBackward(x, weight, eps, dy, dx);
    }
}
