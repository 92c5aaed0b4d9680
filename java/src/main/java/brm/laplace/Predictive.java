package brm.laplace;

import brm.backbone.Linear;
import brm.backbone.LoraContext;
import brm.backbone.Workspace;
import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The Laplace predictive of a reward model: for a batch of sequences, one forward gives the means
 * μ_s and one backward seeded with 1 for every sequence gives each sequence's Jacobians, since every
 * sequence of a packed batch only sees itself. Per LoRA matrix W [out, in] (r the LoRA rank):
 *   lora_A  J_s = s·Σ_t u_t x̃_tᵀ [r, in]:   P = stack_s(J_s) · Q_A  [seqs·r, kA] on the backend,  C_s = Q_Gᵀ·P_s on the host
 *   lora_B  J_sᵀ = s·Σ_t t_t dy_tᵀ [r, out]: P = stack_s(J_sᵀ) · Q_G [seqs·r, kG] on the backend,  C_sᵀ = Q_Aᵀ·P_s on the host
 *   head    J_s = pooled_s [1, hidden]:       C_s = J_s · Q_A            (G = [1])
 * (the wide side of each matrix is projected by one GEMM for the whole batch, the rank-r side per
 * sequence), then with w_ij = 1/(λG_i λA_j + δ):
 *   var_s = Σ_layers Σ_ij C_s,ij² / (λG_i λA_j + δ) + (‖J_s‖² − ‖C_s‖²)/δ
 *   cov(s, s') = Σ C_s·C_s' / (λ + δ) + (⟨J_s, J_s'⟩ − ⟨C_s, C_s'⟩)/δ
 * the remainder terms only for low-rank factors. The rank-r side and the sums run in {@link LaplaceKernels}: on
 * the host, which keeps every sequence's C; on a CUDA backend, on the device, which sends back only var_s and
 * the pair covariances unless {@link #retainCoefficients} asks for C (for {@link #coefficients} and
 * {@link #pairVariance}).
 */
public final class Predictive implements LoraContext.Probe {
    /** Means [n], variances [n] and, for pairs (2i, 2i+1), covariances [n/2] of one batch. */
    public record Batch(float[] mean, double[] variance, double[] pairCovariance) {}

    /** One sequence's coefficients C at one layer, the eigenvalue products λG_i·λA_j beside them, and for a low-rank layer J itself. */
    private record Coefficients(double[] c, double[] lambda, double[] j, double delta) {}

    private final DifferentiableRewardModel model;
    private final Backend backend;
    private final LaplaceKernels kernels;
    private final Posterior posterior;
    private final Workspace ws;
    private final Map<String, Tensor> bases = new HashMap<>();
    private final Map<String, double[]> products = new HashMap<>();
    private boolean retain;
    /** The last batch's coefficients [seqs][layers], or null when its sums were made on the device. */
    private Coefficients[][] coefficients;
    private LaplaceKernels.VarianceSums sums;
    private Packing packing;

    public Predictive(DifferentiableRewardModel model, Posterior posterior) {
        this.model = model;
        this.backend = model.backend();
        this.kernels = LaplaceKernels.of(backend);
        this.posterior = posterior;
        this.ws = new Workspace(backend);
        for (LayerPosterior l : posterior.layers()) products.put(l.key(), l.products());
    }

    /**
     * Keeps every sequence's coefficients on the host from now on, for {@link #coefficients} and {@link #pairVariance}
     * (always so on the host; on a CUDA backend the variances are otherwise summed on the device).
     */
    public Predictive retainCoefficients() {
        retain = true;
        return this;
    }

    /** μ, σ² (and with pairs, the covariance within each pair) of sequences, one batch. */
    public Batch score(List<int[]> sequences, boolean pairs) {
        model.dropout(null);
        float[] mean = model.forward(sequences);
        packing = model.lastBatch();
        sums = retain ? null : kernels.varianceSums(sequences.size(), pairs);
        coefficients = sums == null ? new Coefficients[sequences.size()][posterior.layers().size()] : null;
        float[] ones = new float[sequences.size()];
        Arrays.fill(ones, 1f);
        model.probe(this);
        try {
            model.backward(ones);
        } finally {
            model.probe(null);
        }
        if (posterior.includesHead()) head();
        if (sums != null) return new Batch(mean, sums.variances(), pairs ? sums.pairCovariances() : null);
        double[] variance = new double[sequences.size()];
        for (int s = 0; s < variance.length; s++) variance[s] = covariance(s, s, Double.NaN);
        double[] cov = null;
        if (pairs) {
            cov = new double[sequences.size() / 2];
            for (int i = 0; i < cov.length; i++) cov[i] = covariance(2 * i, 2 * i + 1, Double.NaN);
        }
        return new Batch(mean, variance, cov);
    }

    /** cov(s1, s2) of the last batch's sequences at each layer's δ, or at delta for all layers when it is not NaN. */
    private double covariance(int s1, int s2, double delta) {
        if (coefficients == null) throw new IllegalStateException("the predictive summed the last batch on the device: call retainCoefficients() before scoring");
        double sum = 0;
        for (int l = 0; l < coefficients[s1].length; l++) {
            Coefficients a = coefficients[s1][l], b = coefficients[s2][l];
            double d = Double.isNaN(delta) ? a.delta : delta;
            for (int i = 0; i < a.c.length; i++) sum += a.c[i] * b.c[i] / (a.lambda[i] + d);
            if (a.j != null) sum += (dot(a.j, b.j) - dot(a.c, b.c)) / d;
        }
        return sum;
    }

    /**
     * Sequence s's coefficients in the last batch, one vector per layer: C (then J for a low-rank layer),
     * linear in the Jacobian, so the mean over a pool is the coefficients of the pool's mean reward r̄.
     */
    public double[][] coefficients(int s) {
        if (coefficients == null) throw new IllegalStateException("the predictive summed the last batch on the device: call retainCoefficients() before scoring");
        double[][] out = new double[coefficients[s].length][];
        for (int l = 0; l < out.length; l++) {
            Coefficients c = coefficients[s][l];
            out[l] = c.j == null ? c.c.clone() : concat(c.c, c.j);
        }
        return out;
    }

    /**
     * var(r_s − r̄) for a sequence with coefficients c ({@link #coefficients}, of any batch), r̄ the mean
     * reward of a pool whose mean coefficients (a mean of {@link #coefficients}) are given: the variance of
     * s's reward relative to its pool, where the part of σ² every response to a prompt shares cancels.
     */
    public double relativeVariance(double[][] c, double[][] poolMean) {
        double sum = 0;
        List<LayerPosterior> layers = posterior.layers();
        for (int l = 0; l < layers.size(); l++) {
            double[] lambda = products.get(layers.get(l).key()), x = c[l], m = poolMean[l];
            double delta = layers.get(l).delta(), projected = 0;
            int k = lambda.length;
            for (int i = 0; i < k; i++) {
                double d = x[i] - m[i];
                sum += d * d / (lambda[i] + delta);
                projected += d * d;
            }
            if (x.length > k) {
                double whole = 0;
                for (int i = k; i < x.length; i++) {
                    double d = x[i] - m[i];
                    whole += d * d;
                }
                sum += (whole - projected) / delta;
            }
        }
        return sum;
    }

    private static double[] concat(double[] a, double[] b) {
        double[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** var(Δ) = var_c + var_r − 2·cov of pair i of the last batch (scored with pairs), at one prior precision δ for every layer. */
    double pairVariance(int i, double delta) {
        return covariance(2 * i, 2 * i, delta) + covariance(2 * i + 1, 2 * i + 1, delta) - 2 * covariance(2 * i, 2 * i + 1, delta);
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    @Override
    public void capture(Linear linear, Tensor x, Tensor u, Tensor t, Tensor dy, float scale) {
        String module = linear.module().path();
        LayerPosterior a = posterior.layer(PeftAdapter.loraKey(module, "A")), b = posterior.layer(PeftAdapter.loraKey(module, "B"));
        if (a == null || b == null) throw new IllegalStateException("the posterior has no layer for " + module);
        project(a, u, x, scale, false);
        project(b, t, dy, scale, true);
    }

    /**
     * Coefficients of every sequence at one layer from the per-token small side [T, r] and wide side
     * [T, wide]: stack_s = scale·small_sᵀ·wide_s [r, wide]. transposed: the stack holds J_sᵀ (lora_B).
     */
    private void project(LayerPosterior l, Tensor small, Tensor wide, float scale, boolean transposed) {
        int r = small.cols(), n = wide.cols(), seqs = packing.seqs();
        Eigenbasis wideBasis = transposed ? l.g() : l.a(), smallBasis = transposed ? l.a() : l.g();
        int kw = wideBasis.rank();
        Tensor stack = ws.get("stack" + n, seqs * r, n), projected = ws.get("projected" + n + "x" + kw, seqs * r, kw);
        backend.segmentOuter(packing, small, wide, scale, stack);
        backend.matmul(stack, false, basis(l.key() + (transposed ? "G" : "A"), wideBasis), false, 1f, 0f, projected);
        // C [kG, kA]: lora_A: C_ij = Σ_k Q_G[k, i]·P_s[k, j];  lora_B: C_ij = Σ_k Q_A[k, j]·P_s[k, i]
        coefficients(l, projected, stack, r, smallBasis, wideBasis, transposed);
    }

    /** The head's coefficients: J_s = pooled_s [1, hidden], C_s = Q_G·J_s·Q_A with Q_G = [1]. */
    private void head() {
        LayerPosterior l = posterior.layer(PeftAdapter.HEAD);
        Tensor pooled = model.lastPooled(), projected = ws.get("head", pooled.rows(), l.a().rank());
        backend.matmul(pooled, false, basis(l.key() + "A", l.a()), false, 1f, 0f, projected);
        coefficients(l, projected, pooled, 1, l.g(), l.a(), false);
    }

    /** Layer l's coefficients of every sequence from P = stack_s·Q_wide [seqs·r, kw]: summed into the device sums, or kept. */
    private void coefficients(LayerPosterior l, Tensor projected, Tensor stack, int r, Eigenbasis small, Eigenbasis wide, boolean transposed) {
        if (sums != null) {
            sums.add(projected, l.full() ? null : stack, r, small, wide, l.delta(), transposed);
            return;
        }
        int seqs = packing.seqs(), n = stack.cols(), index = indexOf(l);
        double[][] c = kernels.coefficients(projected, seqs, r, small, wide.rank(), transposed);
        float[] j = l.full() ? null : backend.download(stack);
        double[] lambda = products.get(l.key());
        for (int s = 0; s < seqs; s++) {
            double[] js = null;
            if (j != null) {
                js = new double[r * n];
                for (int i = 0; i < js.length; i++) js[i] = j[s * r * n + i];
            }
            coefficients[s][index] = new Coefficients(c[s], lambda, js, l.delta());
        }
    }

    private int indexOf(LayerPosterior l) {
        return posterior.layers().indexOf(l);
    }

    /** An eigenbasis [dim, k] uploaded once. */
    private Tensor basis(String name, Eigenbasis e) {
        return bases.computeIfAbsent(name, k -> {
            float[] v = new float[e.vectors().length];
            for (int i = 0; i < v.length; i++) v[i] = (float) e.vectors()[i];
            return backend.upload(v, e.dim(), e.rank());
        });
    }
}
