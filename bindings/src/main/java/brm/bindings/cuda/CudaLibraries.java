package brm.bindings.cuda;

import java.nio.file.Path;
import java.util.Optional;

/**
 * Where brm's CUDA libraries are: {@code -Dbrm.cuda.library=PATH} (or {@code BRM_CUDA_LIBRARY}) for the GPU
 * library, {@code -Dbrm.cuda.emulator=PATH} for the emulator, else {@code build/native/} under the checkout
 * ({@code brm.home}, which the launcher and the test runner set; else the working directory), where
 * scripts/build-native.sh puts them.
 */
public final class CudaLibraries {
    private CudaLibraries() {}

    /** libbrm_cuda.so: the kernels for a GPU. */
    public static Path gpu() {
        String property = System.getProperty("brm.cuda.library");
        if (property != null && !property.isBlank()) return Path.of(property);
        String env = System.getenv("BRM_CUDA_LIBRARY");
        if (env != null && !env.isBlank()) return Path.of(env);
        return built("libbrm_cuda.so");
    }

    /** libbrm_cuda_emu.so: the same kernels on the CPU emulator (tests without a GPU). */
    public static Path emulator() {
        String property = System.getProperty("brm.cuda.emulator");
        if (property != null && !property.isBlank()) return Path.of(property);
        return built("libbrm_cuda_emu.so");
    }

    /**
     * For tests: the GPU library when it opens and a device answers, else the emulator; empty when neither
     * was built. With {@code -Dbrm.cuda.require=gpu} (the device check) a missing GPU throws instead.
     */
    public static Optional<Cuda> gpuElseEmulator() {
        boolean requireGpu = "gpu".equals(System.getProperty("brm.cuda.require"));
        try {
            Optional<Cuda> gpu = Cuda.open(gpu());
            if (gpu.isPresent()) return gpu;
            if (requireGpu) throw new IllegalStateException("brm.cuda.require=gpu but " + gpu() + " does not exist");
        } catch (RuntimeException noDevice) {
            if (requireGpu) throw noDevice;
        }
        return Cuda.open(emulator());
    }

    private static Path built(String name) {
        return Path.of(System.getProperty("brm.home", ".")).resolve("build/native").resolve(name).toAbsolutePath().normalize();
    }
}
