package brm.laplace;

import brm.backend.CudaBackend;
import brm.backend.Tensor;
import brm.bindings.NativeException;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.Cusolver;
import brm.bindings.cuda.DeviceBuffer;
import brm.bindings.cuda.EigenKernels;
import brm.bindings.cuda.KfacKernels;
import brm.bindings.cuda.VarianceKernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The Laplace hot paths as brm's CUDA kernels, for a {@link CudaBackend}:
 *   factors    cuda/kfac.cu: M += scale²·Vᵀ·V in FP64 on the device, batch after batch; one download at the end
 *   eigen      cuda/eigen.cu: Jacobi in FP64, the factors of one size up to 64 in one launch (a block each), larger
 *              ones one at a time over the whole device, or by cuSOLVER's syevd where the machine has libcusolver
 *              ({@link Cusolver}, found at run time; a failure of it falls back to Jacobi); the PSD checks and
 *              clamping as on the host, and the host's {@link SymmetricEigen} (with its jitter retries) for a
 *              matrix Jacobi does not converge on. Why cuSOLVER for the large ones: every Jacobi sweep rotates all
 *              n²/2 pairs of rows and columns, O(n³) in memory-bound passes, and it takes 6–12 sweeps (seconds at
 *              n = 3072); syevd reduces to tridiagonal form once, mostly in GEMMs, then divide and conquer, a few
 *              n³ flops in all.
 *   variance   cuda/variance.cu: per layer C_s = Qᵀ·P_s and its weighted sums of squares, so a batch sends back
 *              [seqs] variances and [seqs/2] covariances; or, when the coefficients are wanted, C itself
 * Device memory of FP64 data (sums, uploaded eigenbases) is freed when the object owning it becomes unreachable.
 */
final class CudaLaplaceKernels implements LaplaceKernels {
    private static final Cleaner CLEANER = Cleaner.create();
    /** Jacobi sweeps before falling back to the host: quadratic convergence takes about 6–12. */
    private static final int MAX_SWEEPS = 40;

    private final CudaBackend backend;
    private final Cuda cuda;
    private final KfacKernels kfac;
    private final EigenKernels eigen;
    private final VarianceKernels variance;
    /** cuSOLVER for the factors above {@link EigenKernels#BATCHED_MAX}, or empty: Jacobi. */
    private final Optional<Cusolver> cusolver;
    /** FP64 copies on the device of eigenvectors and eigenvalues, by the identity of the host array. */
    private final Map<double[], DeviceBuffer> uploaded = new IdentityHashMap<>();

    /** cuSOLVER for the large factors on a GPU where the machine has it, unless -Dbrm.cuda.cusolver=false. */
    CudaLaplaceKernels(CudaBackend backend) {
        this(backend, !backend.cuda().emulator() && !"false".equals(System.getProperty("brm.cuda.cusolver")) ? Shared.CUSOLVER : Optional.empty());
    }

    CudaLaplaceKernels(CudaBackend backend, Optional<Cusolver> cusolver) {
        this.backend = backend;
        this.cusolver = cusolver;
        this.cuda = backend.cuda();
        this.kfac = new KfacKernels(cuda);
        this.eigen = new EigenKernels(cuda);
        this.variance = new VarianceKernels(cuda);
    }

    /** libcusolver, loaded once by the first GPU fit: one stderr line saying it is used, or why it is not. */
    private static final class Shared {
        static final Optional<Cusolver> CUSOLVER = load();

        private static Optional<Cusolver> load() {
            try {
                Optional<Cusolver> found = Cusolver.load();
                found.ifPresent(c -> System.err.println("brm: cuSOLVER (" + c.libraryName() + ") decomposes the K-FAC factors above n = "
                        + EigenKernels.BATCHED_MAX + "; -Dbrm.cuda.cusolver=false for Jacobi"));
                return found;
            } catch (RuntimeException e) {
                System.err.println("brm: cuSOLVER not used: " + e.getMessage());
                return Optional.empty();
            }
        }
    }

    /** Whether the factors above {@link EigenKernels#BATCHED_MAX} go to cuSOLVER. */
    boolean usesCusolver() {
        return cusolver.isPresent();
    }

    /** Device memory of bytes, freed when owner is unreachable (or by an earlier close). */
    private DeviceBuffer allocate(long bytes, Object owner) {
        DeviceBuffer b = cuda.allocate(bytes);
        CLEANER.register(owner, b::close);
        return b;
    }

    private void upload(double[] values, MemorySegment device) {
        try (Arena arena = Arena.ofConfined()) {
            cuda.copyToDevice(device, arena.allocateFrom(JAVA_DOUBLE, values), 8L * values.length);
        }
    }

    private double[] download(MemorySegment device, int count) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(8L * count, 8);
            cuda.copyToHost(host, device, 8L * count);
            return host.toArray(JAVA_DOUBLE);
        }
    }

    /** values on the device, uploaded on first use. */
    private MemorySegment device(double[] values) {
        return uploaded.computeIfAbsent(values, v -> {
            DeviceBuffer b = allocate(8L * v.length, this);
            upload(v, b.address());
            return b;
        }).address();
    }

    @Override
    public FactorSum factorSum(int n) {
        return new DeviceFactorSum(n);
    }

    private final class DeviceFactorSum implements FactorSum {
        private final int n;
        private final DeviceBuffer m;
        private double[] host;

        DeviceFactorSum(int n) {
            this.n = n;
            this.m = allocate(8L * n * n, this);
            cuda.zero(m.address(), 8L * n * n);
        }

        @Override
        public void add(Tensor rows, float scale) {
            if (host != null) throw new IllegalStateException("K-FAC factor [" + n + ", " + n + "] already downloaded: it takes no more rows");
            if (rows.cols() != n) throw new IllegalArgumentException("K-FAC rows [" + rows.rows() + ", " + rows.cols() + "] for a factor [" + n + ", " + n + "]");
            kfac.accumulate(backend.deviceAddress(rows), rows.rows(), n, scale, m.address());
        }

        @Override
        public double[] sum() {
            if (host == null) {
                kfac.mirror(m.address(), n);
                host = download(m.address(), n * n);
                m.close();
            }
            return host;
        }
    }

    @Override
    public List<SymmetricEigen> eigenPsd(List<Symmetric> factors, double tolerance) {
        SymmetricEigen[] out = new SymmetricEigen[factors.size()];
        Map<Integer, List<Integer>> small = new TreeMap<>();  // n -> the factors of that size, decomposed in one launch
        List<Integer> large = new ArrayList<>();
        for (int i = 0; i < out.length; i++) {
            Symmetric f = factors.get(i);
            SymmetricEigen.check(f.a(), f.n(), f.name());
            if (f.n() <= EigenKernels.BATCHED_MAX) small.computeIfAbsent(f.n(), k -> new ArrayList<>()).add(i);
            else large.add(i);
        }
        if (!large.isEmpty())
            try (Cusolver.Handle solver = solver()) {
                for (int i : large) out[i] = large(factors.get(i), solver);
            }
        small.forEach((n, members) -> batched(factors, n, members, out));
        List<SymmetricEigen> result = new ArrayList<>();
        for (int i = 0; i < out.length; i++) {
            Symmetric f = factors.get(i);
            result.add(out[i] == null ? SymmetricEigen.ofPsd(f.a(), f.n(), f.name(), tolerance) : SymmetricEigen.clampPsd(out[i], f.name(), tolerance));
        }
        return result;
    }

    /** a [n, n] made exactly symmetric, ½(a_ij + a_ji), as the host decomposes it. */
    private static void symmetric(double[] a, int n, double[] into, int offset) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) into[offset + i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
    }

    /** The factors at members (all [n, n], n ≤ 64) in one launch; a matrix that did not converge stays null. */
    private void batched(List<Symmetric> factors, int n, List<Integer> members, SymmetricEigen[] out) {
        int count = members.size(), nn = n * n;
        double[] a = new double[count * nn];
        for (int b = 0; b < count; b++) symmetric(factors.get(members.get(b)).a(), n, a, b * nn);
        try (DeviceBuffer matrices = cuda.allocate(8L * a.length); DeviceBuffer values = cuda.allocate(8L * count * n);
             DeviceBuffer vectors = cuda.allocate(8L * a.length); DeviceBuffer sweeps = cuda.allocate(4L * count);
             Arena arena = Arena.ofConfined()) {
            upload(a, matrices.address());
            eigen.batched(matrices.address(), n, count, MAX_SWEEPS, values.address(), vectors.address(), sweeps.address());
            double[] lambda = download(values.address(), count * n), q = download(vectors.address(), a.length);
            MemorySegment s = arena.allocate(4L * count, 4);
            cuda.copyToHost(s, sweeps.address(), 4L * count);
            for (int b = 0; b < count; b++)
                if (s.getAtIndex(JAVA_INT, b) >= 0)
                    out[members.get(b)] = new SymmetricEigen(Arrays.copyOfRange(lambda, b * n, (b + 1) * n), Arrays.copyOfRange(q, b * nn, (b + 1) * nn));
        }
    }

    /** A cuSOLVER handle for the large factors of one call, or null (Jacobi) without cuSOLVER or when it does not start. */
    private Cusolver.Handle solver() {
        if (cusolver.isEmpty()) return null;
        try {
            return cusolver.get().handle();
        } catch (NativeException e) {
            System.err.println("brm: " + e.getMessage() + ": the large K-FAC factors by Jacobi instead");
            return null;
        }
    }

    /**
     * One large factor over the whole device: by cuSOLVER when solver is not null, and by Jacobi without it or
     * when cuSOLVER fails; null when Jacobi did not converge.
     */
    private SymmetricEigen large(Symmetric f, Cusolver.Handle solver) {
        int n = f.n();
        double[] a = new double[n * n];
        symmetric(f.a(), n, a, 0);
        try (DeviceBuffer matrix = cuda.allocate(8L * a.length); DeviceBuffer values = cuda.allocate(8L * n)) {
            upload(a, matrix.address());
            if (solver != null) {
                try {
                    solver.eigen(cuda, matrix.address(), n, values.address());
                    return new SymmetricEigen(download(values.address(), n), transposed(download(matrix.address(), a.length), n));
                } catch (NativeException e) {
                    System.err.println("brm: " + e.getMessage() + ": " + f.name() + " by Jacobi instead");
                    upload(a, matrix.address());  // syevd overwrote it
                }
            }
            try (DeviceBuffer vectors = cuda.allocate(8L * a.length); DeviceBuffer work = cuda.allocate(EigenKernels.largeWorkBytes(n))) {
                if (eigen.large(matrix.address(), n, MAX_SWEEPS, values.address(), vectors.address(), work.address()) < 0) return null;
                return new SymmetricEigen(download(values.address(), n), download(vectors.address(), a.length));
            }
        }
    }

    /** mᵀ of m [n, n] row-major, in tiles that stay in cache: cuSOLVER's eigenvectors are the rows, brm's the columns. */
    private static double[] transposed(double[] m, int n) {
        final int tile = 32;
        double[] t = new double[n * n];
        for (int i0 = 0; i0 < n; i0 += tile)
            for (int j0 = 0; j0 < n; j0 += tile)
                for (int i = i0; i < Math.min(n, i0 + tile); i++)
                    for (int j = j0; j < Math.min(n, j0 + tile); j++) t[j * n + i] = m[i * n + j];
        return t;
    }

    @Override
    public double[][] coefficients(Tensor projected, int seqs, int r, Eigenbasis small, int kw, boolean transposed) {
        int ks = small.rank(), size = ks * kw;
        checkProjected(projected, seqs, r, kw);
        try (DeviceBuffer c = cuda.allocate(8L * seqs * size)) {
            variance.variance(backend.deviceAddress(projected), device(small.vectors()), MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL,
                    seqs, r, ks, kw, 0, 0, transposed, MemorySegment.NULL, MemorySegment.NULL, c.address());
            double[] all = download(c.address(), seqs * size);
            double[][] out = new double[seqs][];
            for (int s = 0; s < seqs; s++) out[s] = Arrays.copyOfRange(all, s * size, (s + 1) * size);
            return out;
        }
    }

    private static void checkProjected(Tensor projected, int seqs, int r, int kw) {
        if (projected.rows() != seqs * r || projected.cols() != kw)
            throw new IllegalArgumentException("projected Jacobians [" + projected.rows() + ", " + projected.cols() + "], expected ["
                    + seqs * r + ", " + kw + "] for " + seqs + " sequences of rank " + r);
    }

    @Override
    public VarianceSums varianceSums(int seqs, boolean pairs) {
        return new DeviceVarianceSums(seqs, pairs);
    }

    private final class DeviceVarianceSums implements VarianceSums {
        private final int seqs;
        private final DeviceBuffer variances, covariances;

        DeviceVarianceSums(int seqs, boolean pairs) {
            this.seqs = seqs;
            variances = allocate(8L * seqs, this);
            cuda.zero(variances.address(), 8L * seqs);
            covariances = pairs ? allocate(8L * (seqs / 2), this) : null;
            if (pairs) cuda.zero(covariances.address(), 8L * (seqs / 2));
        }

        @Override
        public void add(Tensor projected, Tensor jacobian, int r, Eigenbasis small, Eigenbasis wide, double delta, boolean transposed) {
            checkProjected(projected, seqs, r, wide.rank());
            if (jacobian != null && jacobian.rows() != seqs * r)
                throw new IllegalArgumentException("Jacobians [" + jacobian.rows() + ", " + jacobian.cols() + "] for " + seqs + " sequences of rank " + r);
            variance.variance(backend.deviceAddress(projected), device(small.vectors()), device(small.values()), device(wide.values()),
                    jacobian == null ? MemorySegment.NULL : backend.deviceAddress(jacobian), seqs, r, small.rank(), wide.rank(),
                    jacobian == null ? 0 : jacobian.cols(), delta, transposed, variances.address(),
                    covariances == null ? MemorySegment.NULL : covariances.address(), MemorySegment.NULL);
        }

        @Override
        public double[] variances() {
            return download(variances.address(), seqs);
        }

        @Override
        public double[] pairCovariances() {
            return covariances == null ? null : download(covariances.address(), seqs / 2);
        }
    }
}
