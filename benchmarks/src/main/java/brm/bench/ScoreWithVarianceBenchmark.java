package brm.bench;

import brm.laplace.BayesianRewardModel;
import brm.reward.RewardModel;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.SplittableRandom;
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
 * Scoring a batch of B × T tokens with the Pythia-70M-shaped reward model and its rank-8 LoRA on
 * query_key_value (see {@link LaplaceBench}): "mean" is brm score without a posterior (one forward),
 * "variance" with it (one forward, one backward seeded with 1 per sequence, the per-sequence
 * Jacobians projected on the eigenbases: μ and σ² of every sequence). One op is one batch.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
@Warmup(iterations = 3, time = 5)
@Measurement(iterations = 5, time = 5)
public class ScoreWithVarianceBenchmark {
    @Param({"16x256"})
    String shape;

    @Param({"1", "2"})
    int threads;

    @Param({"mean", "variance"})
    String mode;

    private LaplaceBench.Setup setup;
    private RewardModel plain;
    private BayesianRewardModel bayes;
    private List<int[]> batch;

    @Setup
    public void setup() throws IOException {
        String[] bt = shape.split("x");
        int b = Integer.parseInt(bt[0]), t = Integer.parseInt(bt[1]);
        setup = LaplaceBench.create();
        if (mode.equals("mean")) {
            plain = RewardModel.open(setup.model(), setup.lora(), new RewardModel.Options(threads, b * t, OptionalLong.empty()));
        } else {
            LaplaceBench.fit(setup, 8, 32, threads);
            bayes = BayesianRewardModel.open(setup.model(), setup.adapter(), threads, OptionalLong.empty());
        }
        SplittableRandom random = new SplittableRandom(11);
        batch = new ArrayList<>();
        for (int i = 0; i < b; i++) batch.add(random.ints(t, 0, LaplaceBench.VOCAB).toArray());
    }

    @TearDown
    public void tearDown() throws IOException {
        if (plain != null) plain.close();
        if (bayes != null) bayes.close();
        setup.delete();
    }

    @Benchmark
    public Object score() {
        return plain != null ? plain.score(batch) : bayes.score(batch, false);
    }
}
