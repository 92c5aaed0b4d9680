package brm.backend;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuKernelsTest {
    private static float[] exp(float[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i += CpuKernels.S.length())
            CpuKernels.exp(FloatVector.fromArray(CpuKernels.S, x, i)).intoArray(y, i);
        return y;
    }

    /** Within 2 ulp of e^x over the range softmax, silu and gelu use; 0 and ∞ past the float range. */
    @Test
    void expIsAccurateAndSaturates() {
        int n = 16384;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -87f + 175f * i / n;
        x[0] = 0;
        x[1] = -100;
        x[2] = 100;
        float[] y = exp(x);
        for (int i = 3; i < n; i++) {
            double expected = Math.exp(x[i]);
            assertTrue(Math.abs(y[i] - expected) <= 2 * Math.ulp((float) expected), "exp(" + x[i] + ") = " + y[i] + ", expected " + expected);
        }
        assertEquals(1f, y[0]);
        assertEquals(0f, y[1]);
        assertEquals(Float.POSITIVE_INFINITY, y[2]);
    }
}
