package brm.train;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** AdamW against torch.optim.AdamW, the schedules against transformers' formulas, the loss against finite differences. */
class OptimizerTest {
    /**
     * Three steps of torch 1.13's AdamW (lr 0.01, betas (0.8, 0.95), eps 1e-6, weight_decay 0.1) on
     * p = [0.5, -1.25, 2, 0] with the gradients below, printed by torch in float32.
     */
    @Test
    void adamWMatchesTorch() {
        float[][] p = {{0.5f, -1.25f, 2f, 0f}};
        float[][][] grads = {{{0.3f, -0.2f, 1.5f, 0f}}, {{-0.1f, 0.4f, 0.25f, 2f}}, {{0.05f, 0.05f, -3f, -1f}}};
        double[][] expected = {
                {0.4895000457763672, -1.2387499809265137, 1.9880000352859497, 0.0},
                {0.48549598455429077, -1.241695523262024, 1.9784280061721802, -0.007757906336337328},
                {0.48133793473243713, -1.2442907094955444, 1.9802740812301636, -0.009645777754485607}};
        AdamW adam = new AdamW(new AdamW.Hyper(0.8, 0.95, 1e-6, 0.1), new int[] {4});
        for (int s = 0; s < 3; s++) {
            adam.update(p, grads[s], 0.01);
            for (int i = 0; i < 4; i++) assertEquals(expected[s][i], p[0][i], 2e-7, "step " + (s + 1) + " element " + i);
        }
        assertArrayEquals(new float[] {0.0324f, 0.0484f, -0.368f, 0.12f}, adam.firstMoment(0), 1e-6f);
        assertArrayEquals(new float[] {0.00466125f, 0.00953f, 0.5545f, 0.24f}, adam.secondMoment(0), 1e-6f);
        assertEquals(3, adam.step());
    }

    @Test
    void schedulesFollowTransformers() {
        Schedule linear = new Schedule(Schedule.Kind.LINEAR, 2e-4, 10, 110);
        assertEquals(0, linear.at(0));
        assertEquals(1e-4, linear.at(5), 1e-18);
        assertEquals(2e-4, linear.at(10), 1e-18);
        assertEquals(1e-4, linear.at(60), 1e-18);
        assertEquals(2e-6, linear.at(109), 1e-18);
        Schedule cosine = new Schedule(Schedule.Kind.COSINE, 1.0, 0, 100);
        assertEquals(1.0, cosine.at(0), 1e-15);
        assertEquals(0.5, cosine.at(50), 1e-15);
        assertEquals(0.5 * (1 + Math.cos(Math.PI * 0.99)), cosine.at(99), 1e-15);
        assertEquals(3e-4, new Schedule(Schedule.Kind.CONSTANT, 3e-4, 0, 100).at(77));
    }

    @Test
    void bradleyTerryGradientMatchesFiniteDifferences() {
        Random random = new Random(7);
        int pairs = 9;
        float[] rewards = new float[2 * pairs], margins = new float[pairs], grad = new float[2 * pairs];
        for (int i = 0; i < rewards.length; i++) rewards[i] = (float) (random.nextGaussian() * 3);
        for (int i = 0; i < pairs; i++) margins[i] = (float) random.nextDouble();
        rewards[0] = 40f;  // softplus far in its tail
        rewards[3] = -45f;
        BradleyTerry bt = new BradleyTerry(0.03, 0.2);
        double loss = bt.lossAndGradient(rewards, margins, 1.0 / pairs, grad);
        double direct = 0;
        for (int n = 0; n < pairs; n++) {
            double c = rewards[2 * n], j = rewards[2 * n + 1];
            direct += (Math.log1p(Math.exp(-(c - j - margins[n]))) + 0.03 * (c + j) * (c + j) + 0.1 * (c * c + j * j)) / pairs;
        }
        assertEquals(direct, loss, 1e-12 * Math.abs(direct));
        for (int i = 0; i < rewards.length; i++) {
            float[] plus = rewards.clone(), minus = rewards.clone(), scratch = new float[rewards.length];
            double h = 1e-3;
            plus[i] += (float) h;
            minus[i] -= (float) h;
            double fd = (bt.lossAndGradient(plus, margins, 1.0 / pairs, scratch) - bt.lossAndGradient(minus, margins, 1.0 / pairs, scratch))
                    / ((double) plus[i] - minus[i]);
            assertTrue(Math.abs(fd - grad[i]) <= 1e-4 * Math.max(1, Math.abs(fd)), "reward " + i + ": " + grad[i] + " vs " + fd);
        }
    }
}
