package brm.backend;

import brm.BrmException;
import brm.bindings.cuda.CudaLibraries;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** --backend cpu|cuda|auto: which backend each gives with and without a usable CUDA library. */
class BackendsTest {
    @TempDir
    Path tmp;
    private final String previousLibrary = System.getProperty("brm.cuda.library");

    @AfterEach
    void restore() {
        if (previousLibrary == null) System.clearProperty("brm.cuda.library");
        else System.setProperty("brm.cuda.library", previousLibrary);
    }

    private static Backend create(Backends.Kind kind, CudaBackend.Precision precision) {
        return Backends.create(new Backends.Choice(kind, precision), 1);
    }

    @Test
    void withoutALibraryAutoIsTheCpuAndCudaANamedError() {
        Path missing = tmp.resolve("libbrm_cuda.so");
        System.setProperty("brm.cuda.library", missing.toString());
        try (Backend auto = create(Backends.Kind.AUTO, CudaBackend.Precision.FP32)) {
            assertInstanceOf(CpuBackend.class, auto);
        }
        var e = assertThrows(BrmException.class, () -> create(Backends.Kind.CUDA, CudaBackend.Precision.FP32));
        assertTrue(e.getMessage().startsWith("--backend cuda: no CUDA library at " + missing), e.getMessage());
    }

    @Test
    void aLibraryThatIsNotBrmsIsRefusedByName() throws Exception {
        Path bogus = Files.writeString(tmp.resolve("libbrm_cuda.so"), "not a shared library");
        System.setProperty("brm.cuda.library", bogus.toString());
        var e = assertThrows(RuntimeException.class, () -> create(Backends.Kind.CUDA, CudaBackend.Precision.FP32));
        assertTrue(e.getMessage().contains(bogus.toString()), e.getMessage());
        try (Backend auto = create(Backends.Kind.AUTO, CudaBackend.Precision.FP32)) {
            assertInstanceOf(CpuBackend.class, auto);
        }
    }

    @Test
    void withAUsableLibraryAutoAndCudaAreCudaAtTheChosenPrecision() {
        assumeTrue(Files.isRegularFile(CudaLibraries.emulator()), "no emulator library built (scripts/build-native.sh)");
        System.setProperty("brm.cuda.library", CudaLibraries.emulator().toString());
        for (Backends.Kind kind : new Backends.Kind[] {Backends.Kind.AUTO, Backends.Kind.CUDA})
            try (Backend b = create(kind, CudaBackend.Precision.BF16)) {
                assertEquals(CudaBackend.Precision.BF16, assertInstanceOf(CudaBackend.class, b).precision());
            }
        try (Backend cpu = create(Backends.Kind.CPU, CudaBackend.Precision.BF16)) {
            assertInstanceOf(CpuBackend.class, cpu);
        }
    }

    @Test
    void kindsParseCaseInsensitivelyAndNameTheChoices() {
        assertEquals(Backends.Kind.CUDA, Backends.Kind.parse("CuDa"));
        var e = assertThrows(IllegalArgumentException.class, () -> Backends.Kind.parse("gpu"));
        assertEquals("backend 'gpu' is not cpu, cuda or auto", e.getMessage());
    }
}
