package brm.bench;

import brm.laplace.Posterior;
import java.io.IOException;
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
 * brm laplace's work on the Pythia-70M-shaped model with rank 8 on query_key_value (see
 * {@link LaplaceBench}): the K-FAC pass (exact Fisher, tokens reduce) over P pairs of 2 × T tokens,
 * the float64 eigendecompositions of all 24 factors (6 of them 1536 × 1536) and the marginal-likelihood
 * prior, written to posterior.safetensors, for P = pairs pairs of 2 × 256 tokens. Single shot, seconds
 * per fit; the pass scales linearly in the pairs, so 1000 pairs ≈ eigen time + (fit − eigen time)·1000/P.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
@Warmup(iterations = 1)
@Measurement(iterations = 3)
public class LaplaceFitBenchmark {
    @Param({"64"})
    int pairs;

    @Param({"1"})
    int threads;

    private LaplaceBench.Setup setup;

    @Setup
    public void setup() throws IOException {
        setup = LaplaceBench.create();
    }

    @TearDown
    public void tearDown() throws IOException {
        setup.delete();
    }

    @Benchmark
    public Posterior fit() {
        return LaplaceBench.fit(setup, pairs, 256, threads);
    }
}
