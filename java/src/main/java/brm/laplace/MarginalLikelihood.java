package brm.laplace;

import brm.BrmException;
import java.util.List;

/**
 * The prior precision δ of the Laplace approximation by maximising the marginal likelihood.
 *
 * Prior θ ~ N(0, δ⁻¹·I) on the P LoRA parameters, posterior precision H + δ·I with H ≈ the K-FAC
 * curvature, whose eigenvalues are the products λ = λ^G_i·λ^A_j of each layer's factor eigenvalues.
 * Laplace's evidence (the 2π terms of prior and posterior cancel):
 *
 *   log Z(δ) = log p(D|θ*) − ½·[Σ_k log(λ_k + δ) − P·log δ + δ·‖θ*‖²]
 *            = log p(D|θ*) − ½·[Σ_k log1p(λ_k/δ) + δ·‖θ*‖²]
 *
 * The second form needs only the nonzero λ_k: a zero eigenvalue — also every direction a rank-K
 * sketch leaves out, so a layer carries its factor dimensions beside its stored eigenvalues — adds
 * log(0 + δ) − log δ = 0. With u = log δ and t_k = λ_k/(λ_k + δ) ∈ (0, 1):
 *
 *   h(u)  = d log Z/du = ½·[γ(δ) − δ·‖θ*‖²],     γ(δ) = Σ_k t_k  (effective parameter count)
 *   h'(u) = −½·[Σ_k t_k·(1 − t_k) + δ·‖θ*‖²] < 0
 *
 * so log Z is concave in u and its maximiser solves δ·‖θ*‖² = γ(δ). Since 0 < γ ≤ N (the number of
 * nonzero λ_k) and γ ≥ λ_max/(λ_max + δ) ≥ ½ for δ ≤ λ_max, the root lies in
 * [min(λ_max, 1/(2‖θ*‖²)), N/‖θ*‖²]. Newton on u is kept inside that bracket (bisection when a step
 * leaves it), so it always converges. With ‖θ*‖² = 0 log Z grows without bound as δ → ∞; with
 * every λ = 0 it grows as δ → 0: neither has a finite optimum.
 *
 * A layer's products are never materialised: sums run over i, j of the two eigenvalue arrays,
 * O(|λG|·|λA|) per evaluation.
 */
public final class MarginalLikelihood {
    private MarginalLikelihood() {}

    private static final int MAX_STEPS = 200;

    /**
     * One layer's Kronecker curvature G ⊗ A with G [gDim, gDim], A [aDim, aDim] and its P = gDim·aDim
     * parameters; the eigenvalues not stored (a rank-K sketch of a factor) are 0.
     *
     * @param gValues     eigenvalues of G ≥ 0, at most gDim of them
     * @param aValues     eigenvalues of A ≥ 0, at most aDim of them
     * @param normSquared ‖θ*_l‖², the squared norm of the layer's MAP parameters
     */
    public record Layer(double[] gValues, int gDim, double[] aValues, int aDim, double normSquared) {
        public Layer {
            check(gValues, gDim, "G");
            check(aValues, aDim, "A");
            if (!(normSquared >= 0) || Double.isInfinite(normSquared))
                throw new BrmException("layer ‖θ*‖² must be finite and ≥ 0, got " + normSquared);
        }

        /** Full factors: every eigenvalue stored. */
        public Layer(double[] gValues, double[] aValues, double normSquared) {
            this(gValues, gValues.length, aValues, aValues.length, normSquared);
        }

        private static void check(double[] values, int dim, String factor) {
            if (values.length > dim)
                throw new BrmException("layer " + factor + " factor has " + values.length + " eigenvalues but dimension " + dim);
            for (double v : values)
                if (!(v >= 0) || Double.isInfinite(v))
                    throw new BrmException("layer " + factor + " factor has eigenvalue " + v + ": eigenvalues must be finite and ≥ 0");
        }

        /** P = gDim·aDim. */
        public double parameters() {
            return (double) gDim * aDim;
        }
    }

    /** One δ for all layers: the maximiser of log Z over all their products with ‖θ*‖² = Σ_l ‖θ*_l‖². */
    public static double optimalScalar(List<Layer> layers) {
        return optimal(layers, "all " + layers.size() + " layers");
    }

    /** δ_l per layer [layers.size()], each maximising its own term of log Z. */
    public static double[] optimalPerLayer(List<Layer> layers) {
        double[] deltas = new double[layers.size()];
        for (int l = 0; l < deltas.length; l++) deltas[l] = optimal(List.of(layers.get(l)), "layer " + l);
        return deltas;
    }

    /** log Z with δ_l = deltas[l], or deltas[0] for every layer when deltas has length 1. */
    public static double logZ(List<Layer> layers, double[] deltas, double logLik) {
        if (deltas.length != 1 && deltas.length != layers.size())
            throw new BrmException("log Z needs 1 or " + layers.size() + " prior precisions, got " + deltas.length);
        double sum = 0;
        for (int l = 0; l < layers.size(); l++) {
            var layer = layers.get(l);
            double delta = deltas[deltas.length == 1 ? 0 : l];
            if (!(delta > 0) || Double.isInfinite(delta)) throw new BrmException("prior precision of layer " + l + " must be finite and > 0, got " + delta);
            for (double g : layer.gValues())
                for (double a : layer.aValues()) sum += Math.log1p(g * a / delta);
            sum += delta * layer.normSquared();
        }
        return logLik - 0.5 * sum;
    }

    /** The δ maximising log Z over layers (one shared δ); what names them in errors. */
    private static double optimal(List<Layer> layers, String what) {
        double norm = 0, lambdaMax = 0, nonzero = 0;
        for (var layer : layers) {
            norm += layer.normSquared();
            double gMax = 0, aMax = 0;
            int gCount = 0, aCount = 0;
            for (double g : layer.gValues()) if (g > 0) { gCount++; gMax = Math.max(gMax, g); }
            for (double a : layer.aValues()) if (a > 0) { aCount++; aMax = Math.max(aMax, a); }
            nonzero += (double) gCount * aCount;
            lambdaMax = Math.max(lambdaMax, gMax * aMax);
        }
        if (!(norm > 0))
            throw new BrmException("prior precision of " + what + ": ‖θ*‖² = 0, so log Z grows without bound as δ → ∞ (no finite optimum)");
        if (!(lambdaMax > 0))
            throw new BrmException("prior precision of " + what + ": every curvature eigenvalue is 0, so log Z grows without bound as δ → 0 (no finite optimum)");

        double lo = Math.log(Math.min(lambdaMax, 0.5 / norm)), hi = Math.log(nonzero / norm), u = 0.5 * (lo + hi);
        for (int step = 0; step < MAX_STEPS && hi - lo > 1e-15 * Math.max(1, Math.abs(u)); step++) {
            double delta = Math.exp(u), gamma = 0, curvature = 0;
            for (var layer : layers)
                for (double g : layer.gValues()) {
                    if (g == 0) continue;
                    for (double a : layer.aValues()) {
                        double lambda = g * a, t = lambda / (lambda + delta);
                        gamma += t;
                        curvature += t * (1 - t);
                    }
                }
            double h = 0.5 * (gamma - delta * norm), dh = -0.5 * (curvature + delta * norm);
            if (h == 0) return delta;
            if (h > 0) lo = u;
            else hi = u;
            double next = u - h / dh;
            if (Math.abs(next - u) <= 1e-14 * Math.max(1, Math.abs(u))) return Math.exp(next);
            u = next > lo && next < hi ? next : 0.5 * (lo + hi);
        }
        return Math.exp(u);
    }
}
