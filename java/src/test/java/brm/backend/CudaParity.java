package brm.backend;

import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.CudaLibraries;
import org.junit.jupiter.api.Assumptions;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the CUDA backend's parity tests share: the backend (a GPU when one answers, else the CPU emulator
 * running the same kernels; the test is skipped when no CUDA library was built), random data and a
 * comparison that names the worst element.
 */
public final class CudaParity {
    private static Cuda cuda;
    private static boolean opened;

    private CudaParity() {}

    public static CudaBackend backend() {
        return backend(CudaBackend.Precision.FP32);
    }

    public static synchronized CudaBackend backend(CudaBackend.Precision precision) {
        if (!opened) cuda = CudaLibraries.gpuElseEmulator().orElse(null);
        opened = true;
        Assumptions.assumeTrue(cuda != null, "no CUDA library built (scripts/build-native.sh): CUDA tests skipped");
        return new CudaBackend(cuda, precision);
    }

    public static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian();
        return v;
    }

    /** |got - expected| ≤ tolerance · (1 + |expected|) everywhere; the message names the worst element. */
    public static void assertClose(String what, float[] expected, float[] got, double tolerance) {
        assertEquals(expected.length, got.length, what + ": length");
        int worst = -1;
        double worstError = 0;
        for (int i = 0; i < expected.length; i++) {
            double error = Math.abs(got[i] - expected[i]) / (1 + Math.abs(expected[i]));
            if (!(error <= worstError) || Double.isNaN(got[i])) {
                worstError = Double.isNaN(got[i]) ? Double.POSITIVE_INFINITY : error;
                worst = i;
            }
        }
        if (worstError > tolerance)
            fail(what + ": element " + worst + " is " + got[worst] + ", expected " + expected[worst] + " (relative error " + worstError + " > " + tolerance + ")");
    }
}
