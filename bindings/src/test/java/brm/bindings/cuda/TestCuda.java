package brm.bindings.cuda;

import org.junit.jupiter.api.Assumptions;

/** The CUDA library of this module's tests: {@link CudaLibraries#gpuElseEmulator}, the test skipped when none was built. */
final class TestCuda {
    private static Cuda cuda;
    private static boolean opened;

    private TestCuda() {}

    static synchronized Cuda get() {
        if (!opened) cuda = CudaLibraries.gpuElseEmulator().orElse(null);
        opened = true;
        Assumptions.assumeTrue(cuda != null, "no CUDA library built (scripts/build-native.sh): CUDA tests skipped");
        return cuda;
    }
}
