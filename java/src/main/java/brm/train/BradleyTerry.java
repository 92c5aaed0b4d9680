package brm.train;

import brm.reward.Logistic;

/**
 * The Bradley–Terry loss of a reward model on preference pairs, with the options of TRL's
 * RewardTrainer and Open-Assistant's reward models. For pair n with rewards c = r(chosen),
 * j = r(rejected) and margin m_n (0 unless margins are used):
 *   ℓ_n = −log σ(c − j − m_n) + C·(c + j)² + β·½(c² + j²)
 *   L   = (1/N)·Σ_n ℓ_n                                    (N: the pairs of one optimizer step)
 *   ∂ℓ_n/∂c = −σ(−(c − j − m_n)) + 2C·(c + j) + β·c
 *   ∂ℓ_n/∂j = +σ(−(c − j − m_n)) + 2C·(c + j) + β·j
 *
 * @param centerRewards C of --center-rewards (TRL's center_rewards_coefficient)
 * @param scoreL2       β of --score-l2
 */
public record BradleyTerry(double centerRewards, double scoreL2) {
    public BradleyTerry {
        if (!(centerRewards >= 0) || !(scoreL2 >= 0) || Double.isInfinite(centerRewards) || Double.isInfinite(scoreL2))
            throw new IllegalArgumentException("loss coefficients must be finite and non-negative: center " + centerRewards + ", l2 " + scoreL2);
    }

    /**
     * Σ_n weight·ℓ_n over the pairs of rewards [2n] (chosen, rejected interleaved) with margins [n]
     * (null: all 0), and sets dRewards [2n] = weight·∂ℓ_n/∂r (weight = 1/N for a mean over N pairs).
     */
    public double lossAndGradient(float[] rewards, float[] margins, double weight, float[] dRewards) {
        double total = 0;
        for (int n = 0; n < rewards.length / 2; n++) {
            double c = rewards[2 * n], j = rewards[2 * n + 1], x = c - j - (margins == null ? 0 : margins[n]);
            double loss = Logistic.softplus(-x) + centerRewards * (c + j) * (c + j) + scoreL2 * 0.5 * (c * c + j * j);
            double lose = Logistic.sigmoid(-x), center = 2 * centerRewards * (c + j);
            dRewards[2 * n] = (float) (weight * (-lose + center + scoreL2 * c));
            dRewards[2 * n + 1] = (float) (weight * (lose + center + scoreL2 * j));
            total += weight * loss;
        }
        return total;
    }
}
