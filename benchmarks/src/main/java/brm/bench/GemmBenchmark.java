package brm.bench;

import brm.cpu.Gemm;
import brm.cpu.Parallel;
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

/**
 * Square FP32 products of {@link Gemm}, size³, on 1 or 2 threads:
 *
 *   sgemm:  C[size, size] = A[size, size] · B[size, size]          (no transposes, beta = 0)
 *   linear: y[size, size] = x[size, size] · Wᵀ, W packed once in setup
 *
 * Reported in ops/s; one op is 2·size³ FLOP, so GFLOP/s = ops/s · 2·size³ / 10⁹
 * (512³: ops/s × 0.2684; 1024³: ops/s × 2.147).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 3)
public class GemmBenchmark {
    @Param({"512", "1024"})
    int size;

    @Param({"1", "2"})
    int threads;

    private float[] a, b, c;
    private Gemm.PackedWeight w;
    private Parallel par;

    @Setup
    public void setup() {
        Random rnd = new Random(42);
        a = random(rnd, size * size);
        b = random(rnd, size * size);
        c = new float[size * size];
        w = Gemm.pack(b, size, size);
        par = new Parallel(threads);
    }

    @TearDown
    public void tearDown() {
        par.close();
    }

    @Benchmark
    public float[] sgemm() {
        Gemm.sgemm(par, false, false, size, size, size, 1f, a, 0, size, b, 0, size, 0f, c, 0, size);
        return c;
    }

    @Benchmark
    public float[] linear() {
        Gemm.linear(par, a, 0, size, w, null, c, 0);
        return c;
    }

    private static float[] random(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextFloat() * 2f - 1f;
        return v;
    }
}
