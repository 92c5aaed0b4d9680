package brm.head;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class RewardHeadTest {
    /** The fresh head is a function of the seed, with HF's N(0, initializer_range²) statistics. */
    @Test
    void freshHeadIsSeededGaussianWithInitializerRange() {
        float[] a = RewardHead.freshHead(42, 0.02, 20000);
        assertArrayEquals(a, RewardHead.freshHead(42, 0.02, 20000));
        double mean = 0, var = 0;
        for (float v : a) mean += v / a.length;
        for (float v : a) var += (v - mean) * (v - mean) / a.length;
        assertEquals(0, mean, 0.0005);
        assertEquals(0.02, Math.sqrt(var), 0.0005);
    }
}
