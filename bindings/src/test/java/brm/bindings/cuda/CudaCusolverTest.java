package brm.bindings.cuda;

import brm.bindings.NativeException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Cusolver}: finding it (empty where a machine has none, a clear failure for a bad explicit path), and
 * cusolverDnDsyevd on a GPU where the machine has libcusolver (skipped elsewhere) against Av = λv.
 */
class CudaCusolverTest {
    private static boolean configured() {
        String property = System.getProperty("brm.cusolver.library"), env = System.getenv("BRM_CUSOLVER_LIBRARY");
        return property != null && !property.isBlank() || env != null && !env.isBlank();
    }

    @Test
    void noLibraryIsEmptyNotAnError() {
        assertTrue(Cusolver.find(List.of("libbrm_no_such_cusolver.so.99", "libbrm_no_such_cusolver.so")).isEmpty());
        Assumptions.assumeFalse(configured(), "an explicit cuSOLVER library is configured");
        Optional<Cusolver> found = Cusolver.load();  // empty on a machine without cuSOLVER, never a throw
        found.ifPresent(c -> assertTrue(c.libraryName().startsWith("libcusolver.so"), c.libraryName()));
    }

    @Test
    void aBadExplicitPathIsNamed(@TempDir Path dir) throws IOException {
        Path missing = dir.resolve("libcusolver.so.12");
        var error = assertThrows(NativeException.class, () -> Cusolver.open(missing));
        assertEquals("cuSOLVER library " + missing + " does not exist", error.getMessage());

        Path text = Files.writeString(dir.resolve("libcusolver.so.11"), "not a shared library");
        error = assertThrows(NativeException.class, () -> Cusolver.open(text));
        assertTrue(error.getMessage().startsWith("cuSOLVER library " + text + " does not load"), error.getMessage());

        String before = System.getProperty("brm.cusolver.library");
        System.setProperty("brm.cusolver.library", missing.toString());
        try {
            error = assertThrows(NativeException.class, Cusolver::load);
            assertTrue(error.getMessage().contains(missing.toString()), error.getMessage());
        } finally {
            if (before == null) System.clearProperty("brm.cusolver.library");
            else System.setProperty("brm.cusolver.library", before);
        }

        Path emulator = CudaLibraries.emulator();  // a shared library that loads but is not cuSOLVER
        Assumptions.assumeTrue(Files.isRegularFile(emulator), "no emulator library built");
        error = assertThrows(NativeException.class, () -> Cusolver.open(emulator));
        assertTrue(error.getMessage().contains("no symbol cusolverDnCreate"), error.getMessage());
    }

    /** A GPU and libcusolver, or the test is skipped. */
    private static Cusolver gpuCusolver(Cuda cuda) {
        Assumptions.assumeFalse(cuda.emulator(), "cuSOLVER needs a GPU: " + cuda.deviceName());
        Optional<Cusolver> cusolver = Cusolver.load();
        Assumptions.assumeTrue(cusolver.isPresent(), "no libcusolver on this machine (" + Cusolver.SONAMES + ")");
        return cusolver.get();
    }

    /** Indefinite and repeated eigenvalues: values ascending, the rows of the buffer orthonormal eigenvectors. */
    @Test
    void syevdGivesAscendingValuesAndEigenvectorsAsRows() {
        Cuda cuda = TestCuda.get();
        Cusolver cusolver = gpuCusolver(cuda);
        Random random = new Random();
        try (Cusolver.Handle solver = cusolver.handle(); Arena arena = Arena.ofConfined()) {
            for (int n : new int[] {1, 2, 67, 131}) {
                double[] a = new double[n * n], identity = new double[n * n];
                for (int i = 0; i < n; i++) {
                    identity[i * n + i] = -1.5;
                    for (int j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = random.nextGaussian();
                }
                for (double[] m : List.of(a, identity)) {
                    double[] values, vectors;
                    try (DeviceBuffer matrix = cuda.allocate(8L * n * n); DeviceBuffer w = cuda.allocate(8L * n)) {
                        cuda.copyToDevice(matrix.address(), arena.allocateFrom(JAVA_DOUBLE, m), 8L * n * n);
                        solver.eigen(cuda, matrix.address(), n, w.address());
                        values = download(cuda, arena, w, n);
                        vectors = download(cuda, arena, matrix, n * n);
                    }
                    double residual = 0, orthogonality = 0;
                    for (int k = 0; k < n; k++) {
                        if (k > 0) assertTrue(values[k - 1] <= values[k], "n = " + n + ": eigenvalues not ascending at " + k);
                        for (int i = 0; i < n; i++) {
                            double av = 0;
                            for (int j = 0; j < n; j++) av += m[i * n + j] * vectors[k * n + j];
                            residual = Math.max(residual, Math.abs(av - values[k] * vectors[k * n + i]));
                        }
                        for (int l = 0; l < n; l++) {
                            double dot = 0;
                            for (int j = 0; j < n; j++) dot += vectors[k * n + j] * vectors[l * n + j];
                            orthogonality = Math.max(orthogonality, Math.abs(dot - (k == l ? 1 : 0)));
                        }
                    }
                    assertTrue(residual <= 1e-12 * n, "n = " + n + ": ‖Av − λv‖ = " + residual);
                    assertTrue(orthogonality <= 1e-12 * n, "n = " + n + ": ‖VVᵀ − I‖ = " + orthogonality);
                }
            }
        }
    }

    private static double[] download(Cuda cuda, Arena arena, DeviceBuffer buffer, int count) {
        MemorySegment host = arena.allocate(8L * count, 8);
        cuda.copyToHost(host, buffer.address(), 8L * count);
        return host.toArray(JAVA_DOUBLE);
    }
}
