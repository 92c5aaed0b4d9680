package brm.bench;

import brm.backbone.RandomCheckpoint;
import brm.reward.RewardModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.OptionalLong;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
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
 * The reward-model forward of a Pythia-70M-shaped GPT-NeoX (hidden 512, 6 layers, 8 heads, intermediate
 * 2048, rotary_pct 0.25, parallel residual; random weights) on batch × seq tokens, 1 or 2 threads:
 * embedding → 6 layers → final LayerNorm → reward at each sequence's last token.
 *
 * One op scores the whole batch, so tokens/s = ops/s · batch · seq. FLOP per token at T = seq:
 * linears 2·(3h² + h² + 2·h·4h)·L = 2·12·h²·L = 37.7 M, attention (QKᵀ and PV over the causal triangle,
 * on average (T+1)/2 keys) 2·2·h·(T+1)/2·L; at T = 256 that is 37.7 + 1.6 = 39.3 MFLOP/token.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
@Warmup(iterations = 3, time = 4)
@Measurement(iterations = 5, time = 4)
public class ForwardBenchmark {
    @Param({"16x256", "64x64"})
    String shape;

    @Param({"1", "2"})
    int threads;

    private Path dir;
    private RewardModel model;
    private List<int[]> batch;

    @Setup
    public void setup() throws IOException {
        String[] bt = shape.split("x");
        int b = Integer.parseInt(bt[0]), t = Integer.parseInt(bt[1]);
        dir = Files.createTempDirectory("brm-bench");
        RandomCheckpoint.NeoXShape s = RandomCheckpoint.NeoXShape.PYTHIA_70M;
        RandomCheckpoint.gptNeoX(dir, s, 7);
        model = RewardModel.open(dir, null, new RewardModel.Options(threads, b * t, OptionalLong.empty()));
        SplittableRandom random = new SplittableRandom(11);
        batch = new ArrayList<>();
        for (int i = 0; i < b; i++) batch.add(random.ints(t, 0, 50277).toArray());
    }

    @TearDown
    public void tearDown() throws IOException {
        model.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Benchmark
    public float[] score() {
        return model.score(batch);
    }
}
