package brm.bench;

import brm.backend.Backend;
import brm.backend.CudaBackend;
import brm.backend.CudaBackend.Precision;
import brm.backend.Tensor;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.CudaLibraries;
import brm.bindings.cuda.DeviceBuffer;
import brm.bindings.cuda.GemmKernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

/**
 * Square products of cuda/gemm.cu on a GPU, size³, FP32 (SIMT kernel) or BF16 (tensor cores):
 *
 *   gemm:   C [size, size] = A [size, size] · B [size, size], the precision's kernel alone on inputs already on
 *           the device (and already BF16): the number to hold against torch.mm(a, b) in the same dtype
 *   linear: y [size, size] = x · Wᵀ through CudaBackend.linear (BF16: W kept in 16 bits, x rounded each call)
 *
 * Every invocation ends with a device synchronize, so an op is the kernels' time, not their queueing.
 * Reported in ops/s; one op is 2·size³ FLOP, so GFLOP/s = ops/s · 2·size³ / 10⁹
 * (1024³: ops/s × 2.147; 4096³: ops/s × 137.4). Needs libbrm_cuda.so and a GPU (run from the checkout, or
 * -Dbrm.cuda.library=PATH): without them @Setup fails saying so (the CPU emulator would measure nothing useful).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 3)
public class CudaGemmBenchmark {
    @Param({"1024", "4096"})
    int size;

    @Param({"FP32", "BF16"})
    Precision precision;

    private Cuda cuda;
    private GemmKernels gemm;
    private CudaBackend backend;
    private DeviceBuffer a, b, c;
    private Backend.Weight w;
    private Tensor x, y;

    @Setup
    public void setup() {
        try {
            cuda = Cuda.open(CudaLibraries.gpu()).orElseThrow(() -> new IllegalStateException(CudaLibraries.gpu() + " was not built"));
        } catch (RuntimeException e) {
            throw new IllegalStateException("CudaGemmBenchmark needs a GPU and libbrm_cuda.so (scripts/build-native.sh with nvcc): " + e.getMessage(), e);
        }
        gemm = new GemmKernels(cuda);
        backend = new CudaBackend(cuda, precision);
        Random random = new Random(42);
        int n = size * size;
        float[] values = random(random, n), weights = random(random, n);
        // the raw kernel's inputs in its precision: FP32 as they are, BF16 converted once here
        int bytes = precision == Precision.FP32 ? 4 : 2;
        a = cuda.allocate((long) bytes * n);
        b = cuda.allocate((long) bytes * n);
        c = cuda.allocate(4L * n);
        try (Arena arena = Arena.ofConfined(); DeviceBuffer wide = cuda.allocate(4L * n)) {
            MemorySegment host = arena.allocate(4L * n);
            for (DeviceBuffer to : new DeviceBuffer[] {a, b}) {
                MemorySegment.copy(to == a ? values : weights, 0, host, JAVA_FLOAT, 0, n);
                cuda.copyToDevice(wide.address(), host, 4L * n);
                if (precision == Precision.FP32) cuda.copyOnDevice(to.address(), wide.address(), 4L * n);
                else gemm.toBf16(wide.address(), to.address(), n);
            }
        }
        x = backend.upload(values, size, size);
        y = backend.allocate(size, size);
        w = backend.weight(weights, null, size, size, false);
        cuda.synchronize();
    }

    @TearDown
    public void tearDown() {
        if (backend != null) backend.close();
        for (DeviceBuffer buffer : new DeviceBuffer[] {a, b, c})
            if (buffer != null) buffer.close();
    }

    @Benchmark
    public void gemm() {
        if (precision == Precision.FP32)
            gemm.sgemm(false, false, size, size, size, 1f, a.address(), size, b.address(), size, 0f, c.address(), size, MemorySegment.NULL);
        else
            gemm.gemmBf16(false, false, size, size, size, 1f, a.address(), size, b.address(), size, 0f, c.address(), size, MemorySegment.NULL);
        cuda.synchronize();
    }

    @Benchmark
    public void linear() {
        backend.linear(x, w, null, y);
        cuda.synchronize();
    }

    private static float[] random(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = random.nextFloat() * 2f - 1f;
        return v;
    }
}
