package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * LlamaRMSNorm over the last dimension n: y = x · rstd · weight, rstd = 1/√(mean(x²) + ε); weight [1, n], frozen.
 * Backward: with g = dy·weight: dx = rstd · (g - x · rstd² · mean(g·x)).
 */
public record RmsNorm(Backend backend, Tensor weight, float eps) implements Norm {
    static RmsNorm load(Backend backend, Checkpoint c, String path, int n, double eps) {
        return new RmsNorm(backend, backend.upload(c.floats(path + ".weight", n), 1, n), (float) eps);
    }

    @Override
    public void forward(Tensor x, Tensor out) {
        backend.rmsNorm(x, weight, eps, out);
    }

    @Override
    public void backward(Tensor x, Tensor dy, Tensor dx) {
        backend.rmsNormBackward(x, weight, eps, dy, dx);
    }
}
