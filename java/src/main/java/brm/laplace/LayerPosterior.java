package brm.laplace;

/**
 * The Laplace posterior of one LoRA matrix W [out, in] (a lora_A or lora_B, or the head):
 * precision G ⊗ A + δ·I with G = Q_G Λ_G Q_Gᵀ [out, out] and A = Q_A Λ_A Q_Aᵀ [in, in].
 * For a Jacobian J = ∂r/∂W [out, in] and C = Q_Gᵀ J Q_A:
 *   σ² = Σ_ij C_ij² / (λG_i·λA_j + δ)  +  (‖J‖² − ‖C‖²) / δ
 * where the second term covers the directions a low-rank factor leaves out (eigenvalue 0; it is 0
 * when both factors are full). A covariance uses C¹, C² and ⟨J¹, J²⟩ the same way.
 *
 * @param key   the PEFT key of W (…lora_A.weight, …lora_B.weight, base_model.model.score.weight)
 * @param rawG  the factor G [out, out] as accumulated, or null for a sketch
 * @param rawA  the factor A [in, in], or null for a sketch
 */
public record LayerPosterior(String key, int out, int in, Eigenbasis g, Eigenbasis a, double[] rawG, double[] rawA, double delta) {
    public LayerPosterior {
        if (g.dim() != out || a.dim() != in) throw new IllegalArgumentException(key + ": factors " + g.dim() + ", " + a.dim() + " for W " + out + "x" + in);
        if (!(delta > 0) || Double.isInfinite(delta)) throw new IllegalArgumentException(key + ": prior precision must be positive and finite, got " + delta);
    }

    public LayerPosterior withDelta(double d) {
        return new LayerPosterior(key, out, in, g, a, rawG, rawA, d);
    }

    /** The eigenvalue products λG_i·λA_j [kG, kA] of the projected coefficients C_ij. */
    double[] products() {
        double[] w = new double[g.rank() * a.rank()];
        for (int i = 0; i < g.rank(); i++)
            for (int j = 0; j < a.rank(); j++) w[i * a.rank() + j] = g.values()[i] * a.values()[j];
        return w;
    }

    /** Whether every direction is in the eigenbases (no low-rank remainder). */
    boolean full() {
        return g.full() && a.full();
    }

    MarginalLikelihood.Layer evidence(double normSquared) {
        return new MarginalLikelihood.Layer(g.values(), out, a.values(), in, normSquared);
    }
}
