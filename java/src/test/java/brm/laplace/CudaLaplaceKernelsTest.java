package brm.laplace;

import brm.BrmException;
import brm.backend.CpuBackend;
import brm.backend.CudaBackend;
import brm.backend.CudaParity;
import brm.backend.Tensor;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.DeviceBuffer;
import brm.bindings.cuda.EigenKernels;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA Laplace kernels (cuda/kfac.cu, eigen.cu, variance.cu) through {@link CudaLaplaceKernels} and the bindings,
 * on a GPU when one answers, else on the CPU emulator, against float64 references computed here and against the
 * host's {@link SymmetricEigen}, with fresh random inputs of sizes that are not multiples of the kernels' tiles.
 */
class CudaLaplaceKernelsTest {
    static CudaBackend backend() {
        return CudaParity.backend();
    }

    private static float[] gaussian(Random random, int n) {
        return CudaParity.gaussian(random, n);
    }

    /** Σ over batches of scale²·VᵀV in float64 from the FP32 rows, against the device sum over the same batches. */
    @Test
    void factorSumIsTheFloat64SumOfEveryBatch() {
        Random random = new Random();
        try (CudaBackend be = backend()) {
            var kernels = new CudaLaplaceKernels(be);
            for (int n : new int[] {1, 67, 130}) {
                var sum = kernels.factorSum(n);
                double[] expected = new double[n * n];
                for (int batch = 0; batch < 3; batch++) {
                    int b = random.nextInt(1, 40);
                    float scale = (float) (0.1 + random.nextDouble() * 3);
                    float[] v = gaussian(random, b * n);
                    for (int k = 0; k < b; k++)
                        for (int i = 0; i < n; i++)
                            for (int j = 0; j < n; j++) expected[i * n + j] += (double) scale * scale * ((double) v[k * n + i] * v[k * n + j]);
                    sum.add(be.upload(v, b, n), scale);
                }
                double[] got = sum.sum();
                double worst = 0, max = 0;
                for (int i = 0; i < expected.length; i++) {
                    worst = Math.max(worst, Math.abs(got[i] - expected[i]));
                    max = Math.max(max, Math.abs(expected[i]));
                }
                assertTrue(max > 0 && worst <= 1e-13 * max, "n = " + n + ": worst error " + worst + " of max " + max);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++) assertEquals(got[i * n + j], got[j * n + i], 0, "symmetric at " + i + ", " + j);
                assertThrows(IllegalStateException.class, () -> sum.add(be.upload(new float[n], 1, n), 1f));
            }
        }
    }

    /**
     * {@link Factor} end to end on the CUDA backend against the CPU backend's host path with the same rows: full
     * factors (one batched, one large) and a low-rank sketch, divided by their counts, as matrices and eigenbases.
     */
    @Test
    void factorsOnTheDeviceMatchTheHostPath() {
        Random random = new Random();
        try (CudaBackend be = backend(); CpuBackend cpu = new CpuBackend(1)) {
            LaplaceKernels device = LaplaceKernels.of(be), host = LaplaceKernels.of(cpu);
            assertTrue(device instanceof CudaLaplaceKernels && host instanceof HostLaplaceKernels);
            int[] sizes = {20, 70, 90}, ranks = {0, 0, 5};
            List<Factor> onDevice = new ArrayList<>(), onHost = new ArrayList<>();
            for (int f = 0; f < sizes.length; f++) {
                onDevice.add(new Factor("factor " + f, sizes[f], ranks[f], be, device));
                onHost.add(new Factor("factor " + f, sizes[f], ranks[f], cpu, host));
            }
            for (int batch = 0; batch < 2; batch++)
                for (int f = 0; f < sizes.length; f++) {
                    int b = random.nextInt(5, 30), n = sizes[f];
                    float scale = (float) (0.5 + random.nextDouble());
                    float[] v = gaussian(random, b * n);
                    onDevice.get(f).add(be.upload(v, b, n), scale);
                    onHost.get(f).add(cpu.upload(v, b, n), scale);
                }
            List<Double> counts = List.of(3.0, 1.0, 7.0);
            List<Eigenbasis> got = Factor.eigenbases(device, onDevice, counts), expected = Factor.eigenbases(host, onHost, counts);
            for (int f = 0; f < sizes.length; f++) {
                Eigenbasis g = got.get(f), e = expected.get(f);
                assertEquals(e.rank(), g.rank());
                double max = e.values()[ranks[f] > 0 ? 0 : e.rank() - 1];
                for (int k = 0; k < e.rank(); k++) assertEquals(e.values()[k], g.values()[k], 1e-5 * max, "factor " + f + " eigenvalue " + k);
                if (ranks[f] > 0) continue;
                double[] m = onHost.get(f).matrix(counts.get(f)), d = onDevice.get(f).matrix(counts.get(f));
                for (int i = 0; i < m.length; i++) assertEquals(m[i], d[i], 1e-6 * max, "factor " + f + " entry " + i);
            }
        }
    }

    /** X·Xᵀ/k [n, n] with X [n, k] gaussian: PSD, of rank min(n, k). */
    static double[] psd(Random random, int n, int k) {
        double[] x = new double[n * k], m = new double[n * n];
        for (int i = 0; i < x.length; i++) x[i] = random.nextGaussian();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int t = 0; t < k; t++) s += x[i * k + t] * x[j * k + t];
                m[i * n + j] = s / k;
            }
        return m;
    }

    private static double[] symmetric(Random random, int n) {
        double[] m = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) m[i * n + j] = m[j * n + i] = random.nextGaussian();
        return m;
    }

    /** Ascending values, ‖QΛQᵀ − M‖_max and ‖QᵀQ − I‖_max within tolerance·max|m|, and the values of the host's decomposition. */
    static void assertDecomposes(String what, double[] m, int n, double[] values, double[] vectors, double[] hostValues) {
        double scale = 0;
        for (double v : m) scale = Math.max(scale, Math.abs(v));
        for (int k = 1; k < n; k++) assertTrue(values[k - 1] <= values[k], what + ": eigenvalues not ascending at " + k);
        double recon = 0, orth = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double a = 0, o = 0;
                for (int k = 0; k < n; k++) {
                    a += vectors[i * n + k] * values[k] * vectors[j * n + k];
                    o += vectors[k * n + i] * vectors[k * n + j];
                }
                recon = Math.max(recon, Math.abs(a - m[i * n + j]));
                orth = Math.max(orth, Math.abs(o - (i == j ? 1 : 0)));
            }
        assertTrue(recon <= 1e-12 * Math.max(scale, 1e-300), what + ": ‖QΛQᵀ − M‖ = " + recon + " of " + scale);
        assertTrue(orth <= 1e-12, what + ": ‖QᵀQ − I‖ = " + orth);
        for (int k = 0; k < n; k++)
            assertEquals(hostValues[k], values[k], 1e-11 * scale, what + ": eigenvalue " + k + " against the host's");
    }

    @Test
    void psdFactorsOfEverySizeDecomposeAsOnTheHost() {
        Random random = new Random();
        try (CudaBackend be = backend()) {
            var kernels = new CudaLaplaceKernels(be);
            List<LaplaceKernels.Symmetric> factors = new ArrayList<>();
            // three of one small size (one launch), a rank-deficient one, a lone size, the largest batched, and two large ones
            for (int n : new int[] {5, 5, 5}) factors.add(new LaplaceKernels.Symmetric("small " + n, n, psd(random, n, n + 3)));
            factors.add(new LaplaceKernels.Symmetric("rank 4 of 17", 17, psd(random, 17, 4)));
            factors.add(new LaplaceKernels.Symmetric("one", 1, new double[] {random.nextDouble()}));
            factors.add(new LaplaceKernels.Symmetric("64", 64, psd(random, 64, 70)));
            factors.add(new LaplaceKernels.Symmetric("rank 30 of 65", 65, psd(random, 65, 30)));
            factors.add(new LaplaceKernels.Symmetric("150", 150, psd(random, 150, 160)));
            List<SymmetricEigen> got = kernels.eigenPsd(factors, 1e-5);
            assertEquals(factors.size(), got.size());
            for (int i = 0; i < factors.size(); i++) {
                var f = factors.get(i);
                var host = SymmetricEigen.ofPsd(f.a(), f.n(), f.name(), 1e-5);
                var e = got.get(i);
                assertDecomposes(f.name(), f.a(), f.n(), e.values(), e.vectors(), host.values());
                int zeros = 0, hostZeros = 0;
                for (int k = 0; k < f.n(); k++) {
                    zeros += e.values()[k] == 0 ? 1 : 0;
                    hostZeros += host.values()[k] == 0 ? 1 : 0;
                }
                assertEquals(hostZeros, zeros, f.name() + ": eigenvalues clamped to 0");
            }
            assertEquals(13, count0(got.get(3)), "rank 4 of 17: 13 zero eigenvalues");
            assertEquals(35, count0(got.get(6)), "rank 30 of 65: 35 zero eigenvalues");

            double[] negative = psd(random, 7, 9);
            for (int i = 0; i < 7; i++) negative[i * 7 + i] -= 20;
            var error = assertThrows(BrmException.class, () -> kernels.eigenPsd(List.of(new LaplaceKernels.Symmetric("layers.2.G", 7, negative)), 1e-5));
            assertTrue(error.getMessage().contains("layers.2.G"), error.getMessage());
        }
    }

    private static int count0(SymmetricEigen e) {
        int zeros = 0;
        for (double v : e.values()) zeros += v == 0 ? 1 : 0;
        return zeros;
    }

    /** The bindings on indefinite matrices, repeated eigenvalues and the smallest sizes, batched and large. */
    @Test
    void jacobiDecomposesIndefiniteAndDegenerateMatrices() {
        Random random = new Random();
        try (CudaBackend be = backend(); Arena arena = Arena.ofConfined()) {
            Cuda cuda = be.cuda();
            EigenKernels eigen = new EigenKernels(cuda);
            for (int n : new int[] {1, 2, 3, 33, 70}) {
                double[] a = symmetric(random, n), identity = new double[n * n];
                for (int i = 0; i < n; i++) identity[i * n + i] = 2.5;
                for (double[] m : List.of(a, identity)) {
                    double[] host = SymmetricEigen.of(m, n).values();
                    try (DeviceBuffer matrix = cuda.allocate(8L * n * n); DeviceBuffer values = cuda.allocate(8L * n);
                         DeviceBuffer vectors = cuda.allocate(8L * n * n); DeviceBuffer work = cuda.allocate(EigenKernels.largeWorkBytes(n));
                         DeviceBuffer sweeps = cuda.allocate(4)) {
                        cuda.copyToDevice(matrix.address(), arena.allocateFrom(JAVA_DOUBLE, m), 8L * n * n);
                        if (n <= EigenKernels.BATCHED_MAX) {
                            eigen.batched(matrix.address(), n, 1, 40, values.address(), vectors.address(), sweeps.address());
                            assertDecomposes("batched n = " + n, m, n, download(cuda, values, n), download(cuda, vectors, n * n), host);
                        }
                        int taken = eigen.large(matrix.address(), n, 40, values.address(), vectors.address(), work.address());
                        assertTrue(taken >= 0 && taken <= 20, "n = " + n + ": " + taken + " sweeps");
                        assertDecomposes("large n = " + n, m, n, download(cuda, values, n), download(cuda, vectors, n * n), host);
                    }
                }
            }
        }
    }

    private static double[] download(Cuda cuda, DeviceBuffer buffer, int count) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(8L * count, 8);
            cuda.copyToHost(host, buffer.address(), 8L * count);
            return host.toArray(JAVA_DOUBLE);
        }
    }

    private static Eigenbasis basis(Random random, int dim, int rank) {
        double[] values = new double[rank], vectors = new double[dim * rank];
        for (int i = 0; i < rank; i++) values[i] = random.nextDouble() * 2;
        for (int i = 0; i < vectors.length; i++) vectors[i] = random.nextGaussian() / Math.sqrt(dim);
        return new Eigenbasis(dim, values, vectors);
    }

    /** One layer's C̃_s [ks, kw] = Qᵀ·P_s in float64 from the FP32 projection, as brm.laplace.Predictive defines it. */
    private static double[] reference(float[] p, int s, int r, Eigenbasis small, int kw) {
        int ks = small.rank();
        double[] c = new double[ks * kw];
        for (int i = 0; i < ks; i++)
            for (int j = 0; j < kw; j++)
                for (int k = 0; k < r; k++) c[i * kw + j] += small.vectors()[k * ks + i] * p[(s * r + k) * kw + j];
        return c;
    }

    /**
     * var_s and cov(2i, 2i+1) summed over three layers (full, a low-rank one with its Jacobian remainder, and a
     * transposed one) against the host formula, for an odd number of sequences; and the coefficients themselves
     * against the host's, in both layouts.
     */
    @Test
    void varianceSumsAndCoefficientsMatchTheHostFormula() {
        Random random = new Random();
        try (CudaBackend be = backend()) {
            var kernels = new CudaLaplaceKernels(be);
            var host = new HostLaplaceKernels(be);
            int seqs = 5, pairs = seqs / 2;
            var sums = kernels.varianceSums(seqs, true);
            double[] variance = new double[seqs], covariance = new double[pairs];
            for (int layer = 0; layer < 3; layer++) {
                boolean lowRank = layer == 1, transposed = layer == 2;
                int r = random.nextInt(1, 6), n = random.nextInt(20, 45), kw = lowRank ? n - 7 : n, ks = lowRank ? Math.max(1, r - 1) : r;
                double delta = 0.05 + random.nextDouble();
                Eigenbasis small = basis(random, r, ks), wide = basis(random, n, kw);
                float[] p = gaussian(random, seqs * r * kw), j = gaussian(random, seqs * r * n);
                Tensor projected = be.upload(p, seqs * r, kw), jacobian = be.upload(j, seqs * r, n);
                sums.add(projected, lowRank ? jacobian : null, r, small, wide, delta, transposed);

                double[][] c = new double[seqs][];
                for (int s = 0; s < seqs; s++) c[s] = reference(p, s, r, small, kw);
                for (int s = 0; s < seqs; s++) variance[s] += term(c[s], c[s], j, s, s, r * n, small, wide, delta, lowRank);
                for (int i = 0; i < pairs; i++) covariance[i] += term(c[2 * i], c[2 * i + 1], j, 2 * i, 2 * i + 1, r * n, small, wide, delta, lowRank);

                double[][] device = kernels.coefficients(projected, seqs, r, small, kw, transposed), expected = host.coefficients(projected, seqs, r, small, kw, transposed);
                for (int s = 0; s < seqs; s++)
                    for (int e = 0; e < expected[s].length; e++)
                        assertEquals(expected[s][e], device[s][e], 1e-12 * (1 + Math.abs(expected[s][e])), "layer " + layer + " C_" + s + "[" + e + "]");
                for (int i = 0; i < ks; i++)  // the host's layout is C̃ or C̃ᵀ as asked
                    for (int w = 0; w < kw; w++) assertEquals(c[0][i * kw + w], expected[0][transposed ? w * ks + i : i * kw + w], 1e-12 * (1 + Math.abs(c[0][i * kw + w])));
            }
            double[] gotVariance = sums.variances(), gotCovariance = sums.pairCovariances();
            for (int s = 0; s < seqs; s++) {
                assertTrue(variance[s] != 0, "variance " + s);
                assertEquals(variance[s], gotVariance[s], 1e-10 * (1 + Math.abs(variance[s])), "var_" + s);
            }
            for (int i = 0; i < pairs; i++) assertEquals(covariance[i], gotCovariance[i], 1e-10 * (1 + Math.abs(covariance[i])), "cov " + i);
            assertNull(kernels.varianceSums(seqs, false).pairCovariances());
        }
    }

    /** Σ Ca·Cb/(λsmall_i·λwide_j + δ) (+ (⟨Ja, Jb⟩ − ⟨Ca, Cb⟩)/δ) of one layer. */
    private static double term(double[] ca, double[] cb, float[] j, int sa, int sb, int size, Eigenbasis small, Eigenbasis wide, double delta, boolean lowRank) {
        int kw = wide.rank();
        double sum = 0, cc = 0, jj = 0;
        for (int e = 0; e < ca.length; e++) {
            sum += ca[e] * cb[e] / (small.values()[e / kw] * wide.values()[e % kw] + delta);
            cc += ca[e] * cb[e];
        }
        if (!lowRank) return sum;
        for (int e = 0; e < size; e++) jj += (double) j[sa * size + e] * j[sb * size + e];
        return sum + (jj - cc) / delta;
    }
}
