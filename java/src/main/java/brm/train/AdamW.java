package brm.train;

/**
 * AdamW with decoupled weight decay, as torch.optim.AdamW, per parameter element at step t ≥ 1:
 *   θ ← θ − lr·λ·θ
 *   m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
 *   θ ← θ − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)
 * Parameters, gradients and moments are FP32 arrays on the host (the trained tensors are small:
 * LoRA factors and the head); each element is updated in double and rounded once, so a step is
 * a pure function of its inputs and a checkpoint of (θ, m, v, t) resumes bit-identically.
 */
public final class AdamW {
    /** @param weightDecay λ */
    public record Hyper(double beta1, double beta2, double eps, double weightDecay) {
        public Hyper {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
                throw new IllegalArgumentException("Adam betas must be in [0, 1): " + beta1 + ", " + beta2);
            if (!(eps > 0) || !(weightDecay >= 0) || Double.isInfinite(eps) || Double.isInfinite(weightDecay))
                throw new IllegalArgumentException("Adam eps must be positive and weight decay non-negative: " + eps + ", " + weightDecay);
        }
    }

    private final Hyper hyper;
    private final float[][] m, v;
    private long step;

    /** Fresh moments for parameters of the given sizes. */
    public AdamW(Hyper hyper, int[] sizes) {
        this.hyper = hyper;
        this.m = new float[sizes.length][];
        this.v = new float[sizes.length][];
        for (int i = 0; i < sizes.length; i++) {
            m[i] = new float[sizes[i]];
            v[i] = new float[sizes[i]];
        }
    }

    /** Resumes from saved moments (aliased, not copied) after {@code step} steps. */
    public AdamW(Hyper hyper, float[][] m, float[][] v, long step) {
        this.hyper = hyper;
        this.m = m;
        this.v = v;
        this.step = step;
    }

    public long step() {
        return step;
    }

    public float[] firstMoment(int parameter) {
        return m[parameter];
    }

    public float[] secondMoment(int parameter) {
        return v[parameter];
    }

    /** One step on params[i] [size_i] with grads[i] (already clipped) at learning rate lr. */
    public void update(float[][] params, float[][] grads, double lr) {
        step++;
        double b1 = hyper.beta1(), b2 = hyper.beta2();
        double correction1 = 1 - Math.pow(b1, step), correction2 = 1 - Math.pow(b2, step);
        double decay = 1 - lr * hyper.weightDecay();
        for (int i = 0; i < params.length; i++) {
            float[] p = params[i], g = grads[i], mi = m[i], vi = v[i];
            for (int k = 0; k < p.length; k++) {
                double gk = g[k];
                double mk = b1 * mi[k] + (1 - b1) * gk, vk = b2 * vi[k] + (1 - b2) * gk * gk;
                mi[k] = (float) mk;
                vi[k] = (float) vk;
                p[k] = (float) (p[k] * decay - lr * (mk / correction1) / (Math.sqrt(vk / correction2) + hyper.eps()));
            }
        }
    }
}
