package brm.backend;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuKernelsTest {
    private static float exp(float x) {
        return CpuKernels.exp(FloatVector.broadcast(CpuKernels.S, x)).lane(0);
    }

    /** Within 2 ulp of e^x over the range softmax, silu and gelu use; 0 and ∞ past the float range. */
    @Test
    void expIsAccurateAndSaturates() {
        for (double x = -87; x <= 88; x += 0.01237) {
            float f = (float) x;
            double expected = Math.exp(f);
            assertTrue(Math.abs(exp(f) - expected) <= 2 * Math.ulp((float) expected), "exp(" + f + ") = " + exp(f) + ", expected " + expected);
        }
        assertEquals(1f, exp(0f));
        assertEquals(0f, exp(-100f));
        assertEquals(Float.POSITIVE_INFINITY, exp(100f));
    }
}
