package brm.reward;

/**
 * How well a reward model agrees with preference pairs. For pair n, Δ_n = r(chosen) − r(rejected) and
 * p_n = σ(Δ_n), the Bradley–Terry probability that chosen wins:
 *   accuracy = (1/N)·Σ [Δ_n > 0] (+ ½ for a tie Δ_n = 0)
 *   nll      = (1/N)·Σ −log σ(Δ_n) = (1/N)·Σ softplus(−Δ_n)            (the BT loss, in nats)
 *   ece      over 10 equal-width bins of σ, with each pair counted in both orientations — (p_n, won) and
 *            (1 − p_n, lost) — so that the outcome is not always "chosen wins":
 *            ece = Σ_b (n_b / 2N)·|frequency of wins in b − mean probability in b|
 */
public record PreferenceMetrics(int pairs, double accuracy, double nll, double ece) {
    public static final int BINS = 10;

    public static PreferenceMetrics of(float[] chosen, float[] rejected) {
        if (chosen.length != rejected.length || chosen.length == 0)
            throw new IllegalArgumentException(chosen.length + " chosen and " + rejected.length + " rejected rewards");
        double[] deltas = new double[chosen.length];
        for (int i = 0; i < deltas.length; i++) deltas[i] = (double) chosen[i] - rejected[i];
        return ofLogits(deltas);
    }

    /**
     * The same metrics for any P(chosen ≻ rejected) = σ(z_n) given as its logits z [n]: Δ_n itself
     * (MAP), or the probit predictive's μ_Δ / √(1 + π·var(Δ)/8).
     */
    public static PreferenceMetrics ofLogits(double[] logits) {
        if (logits.length == 0) throw new IllegalArgumentException("no pairs");
        int n = logits.length;
        double correct = 0, nll = 0;
        double[] count = new double[BINS], wins = new double[BINS], probability = new double[BINS];
        for (int i = 0; i < n; i++) {
            double delta = logits[i];
            correct += delta > 0 ? 1 : delta == 0 ? 0.5 : 0;
            nll += Logistic.softplus(-delta);
            double p = Logistic.sigmoid(delta);
            for (int won = 1; won >= 0; won--) {
                double q = won == 1 ? p : 1 - p;
                int b = Math.min(BINS - 1, (int) (q * BINS));
                count[b]++;
                wins[b] += won;
                probability[b] += q;
            }
        }
        double ece = 0;
        for (int b = 0; b < BINS; b++)
            if (count[b] > 0) ece += count[b] / (2.0 * n) * Math.abs(wins[b] / count[b] - probability[b] / count[b]);
        return new PreferenceMetrics(n, correct / n, nll / n, ece);
    }
}
