package brm.bench;

import brm.backbone.ModelConfig;
import brm.backbone.RandomCheckpoint;
import brm.batch.PreferencePairs.Pair;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;
import brm.train.AdamW;
import brm.train.BradleyTerry;
import brm.train.LoraSpec;
import brm.train.OptimizerStep;
import brm.train.Schedule;
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
 * One LoRA reward-model training step (forward + backward + gradient clipping + AdamW) of a
 * Pythia-70M-shaped GPT-NeoX (random weights, as {@link ForwardBenchmark}) with rank 8 on
 * query_key_value and the head trained, on P pairs × 2 sequences × T tokens, 1 or 2 threads: the
 * configuration of benchmarks/pytorch/train_peer.py. One op is one step, tokens/s = ops/s · 2·P·T.
 *
 * FLOPs per token: forward 39.3 M at T = 256 (see ForwardBenchmark); backward dx = dy·W through the
 * frozen linears of layers 1..5 as much again, attention backward ~2.5× its forward, LoRA products
 * and layer 0's input gradient skipped: about 2.0–2.1 forwards per step.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
@Warmup(iterations = 3, time = 6)
@Measurement(iterations = 5, time = 6)
public class TrainBenchmark {
    @Param({"8x256"})
    String shape;

    @Param({"1", "2"})
    int threads;

    private Path dir;
    private DifferentiableRewardModel model;
    private OptimizerStep optimizer;
    private List<Pair> pairs;
    private long step;

    @Setup
    public void setup() throws IOException {
        String[] pt = shape.split("x");
        int p = Integer.parseInt(pt[0]), t = Integer.parseInt(pt[1]);
        dir = Files.createTempDirectory("brm-bench");
        RandomCheckpoint.gptNeoX(dir, RandomCheckpoint.NeoXShape.PYTHIA_70M, 7);
        ModelConfig config = ModelConfig.read(dir);
        var adapter = new LoraSpec(8, 16, 0, List.of("query_key_value")).initial(config, 1);
        model = DifferentiableRewardModel.open(dir, adapter, threads, OptionalLong.empty(), 0f);
        List<Parameter> params = model.parameters();
        float[][] values = new float[params.size()][];
        for (int i = 0; i < values.length; i++) values[i] = model.backend().download(params.get(i).value());
        AdamW adam = new AdamW(new AdamW.Hyper(0.9, 0.999, 1e-8, 0), params.stream().mapToInt(Parameter::size).toArray());
        optimizer = new OptimizerStep(model, values, adam, new Schedule(Schedule.Kind.CONSTANT, 1e-5, 0, 1), new BradleyTerry(0, 0), 1.0, p, 1);
        SplittableRandom random = new SplittableRandom(11);
        pairs = new ArrayList<>();
        for (int i = 0; i < p; i++) pairs.add(new Pair(i + 1, random.ints(t, 0, 50277).toArray(), random.ints(t, 0, 50277).toArray(), 0f));
    }

    @TearDown
    public void tearDown() throws IOException {
        model.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(f);
        }
    }

    @Benchmark
    public OptimizerStep.Result step() {
        return optimizer.run(step++, pairs);
    }
}
