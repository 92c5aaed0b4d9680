package brm.bindings.cuda;

import brm.bindings.CheckedCall;
import brm.bindings.NativeException;
import brm.bindings.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * cuSOLVER's dense symmetric eigensolver, cusolverDnDsyevd (Householder tridiagonalisation, then divide and
 * conquer), bound at run time where a machine has libcusolver: never required, never linked at build time.
 * The matrices are device memory of brm's CUDA library: both runtimes work in the device's primary context, and a
 * new handle's stream is the legacy default stream that brm's kernels and copies use, so the calls are ordered
 * with them.
 */
public final class Cusolver {
    /** Names the dynamic loader is asked for, in order: CUDA 13's, CUDA 11's and 12's, an unversioned link. */
    static final List<String> SONAMES = List.of("libcusolver.so.12", "libcusolver.so.11", "libcusolver.so");
    private static final int CUSOLVER_EIG_MODE_VECTOR = 1, CUBLAS_FILL_MODE_LOWER = 0;
    /** cusolverStatus_t 0–11 (cusolver_common.h). */
    private static final List<String> STATUS = List.of("CUSOLVER_STATUS_SUCCESS", "CUSOLVER_STATUS_NOT_INITIALIZED",
            "CUSOLVER_STATUS_ALLOC_FAILED", "CUSOLVER_STATUS_INVALID_VALUE", "CUSOLVER_STATUS_ARCH_MISMATCH",
            "CUSOLVER_STATUS_MAPPING_ERROR", "CUSOLVER_STATUS_EXECUTION_FAILED", "CUSOLVER_STATUS_INTERNAL_ERROR",
            "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED", "CUSOLVER_STATUS_NOT_SUPPORTED", "CUSOLVER_STATUS_ZERO_PIVOT",
            "CUSOLVER_STATUS_INVALID_LICENSE");

    private final NativeLibrary library;
    // cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t* handle)
    private final MethodHandle create;
    // cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle)
    private final MethodHandle destroy;
    // cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t handle, cusolverEigMode_t jobz, cublasFillMode_t uplo,
    //                                              int n, const double* A, int lda, const double* W, int* lwork)
    private final MethodHandle bufferSize;
    // cusolverStatus_t cusolverDnDsyevd(cusolverDnHandle_t handle, cusolverEigMode_t jobz, cublasFillMode_t uplo,
    //                                   int n, double* A, int lda, double* W, double* work, int lwork, int* devInfo)
    private final MethodHandle syevd;

    private Cusolver(NativeLibrary library) {
        this.library = library;
        create = library.downcall("cusolverDnCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = library.downcall("cusolverDnDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        bufferSize = library.downcall("cusolverDnDsyevd_bufferSize",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        syevd = library.downcall("cusolverDnDsyevd",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
    }

    /**
     * The library at {@code -Dbrm.cusolver.library=PATH} (or {@code BRM_CUSOLVER_LIBRARY}) when one is set, else the
     * first of {@link #SONAMES} the dynamic loader finds (LD_LIBRARY_PATH, the system's); empty when none is found.
     * Throws {@link NativeException} naming the library when an explicit path does not exist or does not load, or a
     * library lacks cuSOLVER's functions.
     */
    public static Optional<Cusolver> load() {
        String path = System.getProperty("brm.cusolver.library");
        if (path == null || path.isBlank()) path = System.getenv("BRM_CUSOLVER_LIBRARY");
        if (path != null && !path.isBlank()) return Optional.of(open(Path.of(path)));
        return find(SONAMES);
    }

    /** The first of sonames the dynamic loader finds, or empty. */
    static Optional<Cusolver> find(List<String> sonames) {
        for (String soname : sonames) {
            Optional<NativeLibrary> library = NativeLibrary.find(soname);
            if (library.isPresent()) return Optional.of(new Cusolver(library.get()));
        }
        return Optional.empty();
    }

    /** The library at path; throws {@link NativeException} naming it when it does not exist, does not load, or is not cuSOLVER. */
    static Cusolver open(Path path) {
        if (!Files.isRegularFile(path)) throw new NativeException("cuSOLVER library " + path + " does not exist");
        try {
            return new Cusolver(NativeLibrary.open(path).orElseThrow());
        } catch (IllegalArgumentException notLoaded) {
            throw new NativeException("cuSOLVER library " + path + " does not load: " + notLoaded.getMessage());
        }
    }

    public String libraryName() {
        return library.name();
    }

    /** A new solver handle (cusolverDnCreate), on the legacy default stream. */
    public Handle handle() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            call("cusolverDnCreate", () -> (int) create.invokeExact(out));
            return new Handle(out.get(ADDRESS, 0));
        }
    }

    private static void call(String function, CheckedCall.StatusCall call) {
        CheckedCall.run(function, call, code -> code >= 0 && code < STATUS.size() ? STATUS.get(code) : null);
    }

    /** A cusolverDnHandle_t, destroyed by {@link #close} (once). */
    public final class Handle implements AutoCloseable {
        private final MemorySegment handle;
        private boolean closed;

        private Handle(MemorySegment handle) {
            this.handle = handle;
        }

        /**
         * a [n, n] symmetric on the device -> values [n] ascending; a is overwritten with the unit eigenvectors as
         * its ROWS: cuSOLVER writes them as the columns of a column-major matrix, so row k of the row-major buffer is
         * the eigenvector of values[k] (the transpose of brm's layout). The input's layout does not matter, a
         * symmetric matrix being its own transpose. Device workspace from cuda. Throws {@link NativeException}
         * naming cusolverDnDsyevd when it fails or does not converge (devInfo > 0), for the caller to fall back.
         */
        public void eigen(Cuda cuda, MemorySegment a, int n, MemorySegment values) {
            if (n < 1) throw new IllegalArgumentException("cusolverDnDsyevd: n = " + n);
            MemorySegment h = pointer();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment size = arena.allocate(JAVA_INT), info = arena.allocate(JAVA_INT);
                call("cusolverDnDsyevd_bufferSize", () -> (int) bufferSize.invokeExact(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER,
                        n, a, n, values, size));
                int lwork = size.get(JAVA_INT, 0);
                if (lwork < 0) throw new NativeException("cusolverDnDsyevd_bufferSize: lwork " + lwork + " for n = " + n);
                try (DeviceBuffer work = cuda.allocate(8L * lwork); DeviceBuffer devInfo = cuda.allocate(4)) {
                    MemorySegment w = work.address(), d = devInfo.address();
                    call("cusolverDnDsyevd", () -> (int) syevd.invokeExact(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER,
                            n, a, n, values, w, lwork, d));
                    cuda.copyToHost(info, d, 4);
                }
                int status = info.get(JAVA_INT, 0);
                if (status > 0)
                    throw new NativeException("cusolverDnDsyevd [" + n + ", " + n + "] did not converge: devInfo " + status
                            + " (off-diagonal elements of the tridiagonal form not reduced to zero)");
                if (status < 0) throw new NativeException("cusolverDnDsyevd [" + n + ", " + n + "]: devInfo " + status + " (parameter " + -status + " is wrong)");
            }
        }

        private MemorySegment pointer() {
            if (closed) throw new IllegalStateException("cuSOLVER handle used after close");
            return handle;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            call("cusolverDnDestroy", () -> (int) destroy.invokeExact(handle));
        }
    }
}
