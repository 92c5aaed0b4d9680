package brm.bench;

import brm.laplace.SymmetricEigen;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Full eigendecomposition (values and vectors, float64, one thread) of a K-FAC-sized symmetric factor
 * A [size, size] = XᵀX/rows + I·1e-3, X [2·size, size] Gaussian: the Laplace fit's per-factor cost.
 *
 * Reported in seconds per decomposition; about 8.7·size³ FLOP (tridiagonalisation and reflector
 * product (4/3)n³ each, ~6n³ in the QL rotations), so GFLOP/s ≈ 8.7·size³ / 10⁹ / score.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx4g"})
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 10)
public class EigenBenchmark {
    @Param({"512", "1536"})
    int size;

    private double[] a;

    @Setup
    public void setup() {
        Random rnd = new Random(42);
        int rows = 2 * size;
        double[] x = new double[rows * size];
        for (int i = 0; i < x.length; i++) x[i] = rnd.nextGaussian();
        a = new double[size * size];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < size; i++) {
                double xi = x[r * size + i] / rows;
                for (int j = 0; j <= i; j++) a[i * size + j] += xi * x[r * size + j];
            }
        for (int i = 0; i < size; i++) {
            a[i * size + i] += 1e-3;
            for (int j = 0; j < i; j++) a[j * size + i] = a[i * size + j];
        }
    }

    @Benchmark
    public SymmetricEigen eigen() {
        return SymmetricEigen.ofPsd(a, size, "A");
    }
}
