package brm.laplace;

import brm.backend.CudaBackend;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.CudaLibraries;
import brm.bindings.cuda.Cusolver;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The large K-FAC factors of {@link CudaLaplaceKernels} by cuSOLVER against the host's {@link SymmetricEigen} and
 * against brm's Jacobi: on a GPU where the machine has libcusolver, skipped elsewhere (the emulator never uses it).
 */
class CudaLaplaceCusolverTest {
    private static Cuda cuda;
    private static boolean opened;

    private static synchronized Cuda cuda() {
        if (!opened) cuda = CudaLibraries.gpuElseEmulator().orElse(null);
        opened = true;
        Assumptions.assumeTrue(cuda != null, "no CUDA library built (scripts/build-native.sh): CUDA tests skipped");
        return cuda;
    }

    @Test
    void theEmulatorAndTheSwitchMeanJacobi() {
        try (CudaBackend be = new CudaBackend(cuda())) {
            String before = System.getProperty("brm.cuda.cusolver");
            System.setProperty("brm.cuda.cusolver", "false");
            try {
                assertFalse(new CudaLaplaceKernels(be).usesCusolver(), "-Dbrm.cuda.cusolver=false");
            } finally {
                if (before == null) System.clearProperty("brm.cuda.cusolver");
                else System.setProperty("brm.cuda.cusolver", before);
            }
            if (be.cuda().emulator()) assertFalse(new CudaLaplaceKernels(be).usesCusolver(), "the emulator");
        }
    }

    @Test
    void cusolverDecomposesAsTheHostAndJacobi() {
        Cuda gpu = cuda();
        Assumptions.assumeFalse(gpu.emulator(), "cuSOLVER needs a GPU: " + gpu.deviceName());
        Optional<Cusolver> cusolver = Cusolver.load();
        Assumptions.assumeTrue(cusolver.isPresent(), "no libcusolver on this machine");
        Random random = new Random();
        try (CudaBackend be = new CudaBackend(gpu)) {
            if (!"false".equals(System.getProperty("brm.cuda.cusolver")))
                assertTrue(new CudaLaplaceKernels(be).usesCusolver(), "a GPU and " + cusolver.get().libraryName() + " but Jacobi");
            var bySolver = new CudaLaplaceKernels(be, cusolver);
            var byJacobi = new CudaLaplaceKernels(be, Optional.empty());
            assertTrue(bySolver.usesCusolver() && !byJacobi.usesCusolver());
            List<LaplaceKernels.Symmetric> factors = new ArrayList<>();
            factors.add(new LaplaceKernels.Symmetric("batched 9", 9, CudaLaplaceKernelsTest.psd(random, 9, 12)));
            factors.add(new LaplaceKernels.Symmetric("rank 30 of 65", 65, CudaLaplaceKernelsTest.psd(random, 65, 30)));
            factors.add(new LaplaceKernels.Symmetric("150", 150, CudaLaplaceKernelsTest.psd(random, 150, 170)));
            factors.add(new LaplaceKernels.Symmetric("257", 257, CudaLaplaceKernelsTest.psd(random, 257, 300)));
            List<SymmetricEigen> solved = bySolver.eigenPsd(factors, 1e-5), jacobi = byJacobi.eigenPsd(factors, 1e-5);
            for (int i = 0; i < factors.size(); i++) {
                var f = factors.get(i);
                int n = f.n();
                SymmetricEigen host = SymmetricEigen.ofPsd(f.a(), n, f.name(), 1e-5), s = solved.get(i), j = jacobi.get(i);
                CudaLaplaceKernelsTest.assertDecomposes("cuSOLVER " + f.name(), f.a(), n, s.values(), s.vectors(), host.values());
                CudaLaplaceKernelsTest.assertDecomposes("Jacobi " + f.name(), f.a(), n, j.values(), j.vectors(), host.values());
                double top = host.values()[n - 1];
                int zeros = 0, hostZeros = 0, compared = 0;
                for (int k = 0; k < n; k++) {
                    zeros += s.values()[k] == 0 ? 1 : 0;
                    hostZeros += host.values()[k] == 0 ? 1 : 0;
                    double gap = Math.min(k > 0 ? host.values()[k] - host.values()[k - 1] : top, k < n - 1 ? host.values()[k + 1] - host.values()[k] : top);
                    if (host.values()[k] == 0 || gap < 1e-4 * top) continue;
                    double dot = 0;  // a well separated eigenvector is the host's up to sign: column k of both
                    for (int r = 0; r < n; r++) dot += s.vectors()[r * n + k] * host.vectors()[r * n + k];
                    assertEquals(1, Math.abs(dot), 1e-8, f.name() + ": eigenvector " + k + " against the host's");
                    compared++;
                }
                assertEquals(hostZeros, zeros, f.name() + ": eigenvalues clamped to 0");
                assertTrue(compared > n / 4, f.name() + ": only " + compared + " eigenvectors well separated");
            }
            int zeros = 0;
            for (double v : solved.get(1).values()) zeros += v == 0 ? 1 : 0;
            assertEquals(35, zeros, "rank 30 of 65: 35 zero eigenvalues");
        }
    }
}
