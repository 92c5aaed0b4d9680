package brm.reward;

/** The logistic function and its log, without overflow: what Bradley–Terry probabilities and losses are made of. */
public final class Logistic {
    private Logistic() {}

    /** σ(x) = 1 / (1 + e^−x). */
    public static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }

    /** softplus(x) = log(1 + e^x) = −log σ(−x). */
    public static double softplus(double x) {
        return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
    }
}
