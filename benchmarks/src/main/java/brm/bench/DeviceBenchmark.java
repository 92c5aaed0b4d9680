package brm.bench;

import brm.backend.Backends;
import brm.backend.CudaBackend;
import brm.batch.PreferencePairs.Pair;
import brm.laplace.BayesianRewardModel;
import brm.laplace.Fisher;
import brm.laplace.Laplace;
import brm.laplace.Posterior;
import brm.laplace.Tokens;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;
import brm.reward.RewardModel;
import brm.train.AdamW;
import brm.train.BradleyTerry;
import brm.train.OptimizerStep;
import brm.train.Schedule;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * brm's side of the GPU comparison (scripts/device-check.sh; the PyTorch side is benchmarks/pytorch/gpu_peer.py with
 * the same shapes): the reward models {@link DeviceModels} wrote under {@code -Dbrm.bench.models} (else written to a
 * temporary folder) on the backend {@code -Dbrm.backend} (default cuda), one op per invocation, time per op:
 *   score       32 × 256 tokens, rewards only (RewardModel.score); precision fp32 or bf16 (the frozen weights' products)
 *   predictive  16 × 256 tokens, μ and σ² of each (BayesianRewardModel: one forward, one backward for the batch)
 *   train       one Bradley–Terry step on 8 pairs × 2 × 256 (forward, backward, clipping, AdamW)
 *   kfac        a Laplace fit on one batch of 8 pairs × 2 × 256: K-FAC factors, eigendecompositions, fixed prior
 *   gemm        C = A·B at size³ (brm.bench.CudaGemmBenchmark's kernel at the given precision)
 * The backend synchronises on every download, and each op ends with one (the rewards, the loss), so a time per op
 * includes all of its device work.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx24g"})
@Warmup(iterations = 1, time = 2)
@Measurement(iterations = 5, time = 1)
public class DeviceBenchmark {
    /** The model, its adapter and the backend, shared by the states below. */
    @State(Scope.Benchmark)
    public static class Models {
        @Param({"pythia-70m"})
        public String model;

        LaplaceBench.Setup setup;
        private Path temporary;

        @Setup(Level.Trial)
        public void open() throws IOException {
            Backends.select(new Backends.Choice(Backends.Kind.parse(System.getProperty("brm.backend", "cuda")), CudaBackend.Precision.FP32));
            String root = System.getProperty("brm.bench.models");
            if (root != null && Files.isDirectory(Path.of(root, model))) {
                setup = LaplaceBench.open(Path.of(root, model));
            } else {
                temporary = Files.createTempDirectory("brm-device");
                setup = LaplaceBench.create(temporary, DeviceModels.SHAPES.get(model));
            }
        }

        @TearDown(Level.Trial)
        public void close() throws IOException {
            if (temporary != null) setup.delete();
        }
    }

    static List<int[]> sequences(int n, int tokens, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(random.ints(tokens, 1, LaplaceBench.VOCAB).toArray());
        return out;
    }

    @State(Scope.Benchmark)
    public static class Scoring {
        /** fp32, bf16 or fp16: the CUDA backend's precision for the frozen weights' products. */
        @Param({"fp32"})
        public String precision;

        RewardModel model;
        List<int[]> batch;

        @Setup(Level.Trial)
        public void open(Models m) {
            Backends.select(new Backends.Choice(Backends.selected().kind(), CudaBackend.Precision.valueOf(precision.toUpperCase(Locale.ROOT))));
            model = RewardModel.open(m.setup.model(), m.setup.lora(), new RewardModel.Options(1, 32 * 256, OptionalLong.empty()));
            batch = sequences(32, 256, 11);
        }

        @TearDown(Level.Trial)
        public void close() {
            model.close();
        }
    }

    @State(Scope.Benchmark)
    public static class Predicting {
        BayesianRewardModel model;
        List<int[]> batch;

        @Setup(Level.Trial)
        public void open(Models m) {
            try (var fitting = DifferentiableRewardModel.open(m.setup.model(), m.setup.lora(), 1, OptionalLong.empty(), 0f)) {
                fit(fitting, m.setup, LaplaceBench.pairs(8, 256, 3)).write(m.setup.adapter());
            }
            model = BayesianRewardModel.open(m.setup.model(), m.setup.adapter(), 1, OptionalLong.empty());
            batch = sequences(16, 256, 12);
        }

        @TearDown(Level.Trial)
        public void close() {
            model.close();
        }
    }

    @State(Scope.Benchmark)
    public static class Training {
        DifferentiableRewardModel model;
        OptimizerStep optimizer;
        List<Pair> pairs;
        long step;

        @Setup(Level.Trial)
        public void open(Models m) {
            model = DifferentiableRewardModel.open(m.setup.model(), m.setup.lora(), 1, OptionalLong.empty(), 0f);
            List<Parameter> params = model.parameters();
            float[][] values = new float[params.size()][];
            for (int i = 0; i < values.length; i++) values[i] = model.backend().download(params.get(i).value());
            AdamW adam = new AdamW(new AdamW.Hyper(0.9, 0.999, 1e-8, 0), params.stream().mapToInt(Parameter::size).toArray());
            optimizer = new OptimizerStep(model, values, adam, new Schedule(Schedule.Kind.CONSTANT, 1e-5, 0, 1), new BradleyTerry(0, 0), 1.0, 8, 1);
            pairs = LaplaceBench.pairs(8, 256, 13);
        }

        @TearDown(Level.Trial)
        public void close() {
            model.close();
        }
    }

    /** The model kept open for the K-FAC fits, and one batch of pairs. */
    @State(Scope.Benchmark)
    public static class Fitting {
        DifferentiableRewardModel model;
        LaplaceBench.Setup setup;
        List<Pair> pairs;

        @Setup(Level.Trial)
        public void open(Models m) {
            setup = m.setup;
            model = DifferentiableRewardModel.open(setup.model(), setup.lora(), 1, OptionalLong.empty(), 0f);
            pairs = LaplaceBench.pairs(8, 256, 3);
        }

        @TearDown(Level.Trial)
        public void close() {
            model.close();
        }
    }

    /** The posterior on pairs (batches of 8), exact Fisher, K-FAC reduce, fixed prior δ = 1. */
    static Posterior fit(DifferentiableRewardModel model, LaplaceBench.Setup s, List<Pair> pairs) {
        return Laplace.fit(model, s.lora(), pairs, List.of(),
                new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.FIXED, 1.0, false, 0, 1 << 20, 8, false, 0));
    }

    @Benchmark
    public float[] score(Scoring s) {
        return s.model.score(s.batch);
    }

    @Benchmark
    public Object predictive(Predicting p) {
        return p.model.score(p.batch, false);
    }

    @Benchmark
    public OptimizerStep.Result train(Training t) {
        return t.optimizer.run(t.step++, t.pairs);
    }

    /** Single shots: a fit of a 410M model takes seconds (24 eigendecompositions of 3072² and 1024² factors). */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @Warmup(iterations = 1)
    @Measurement(iterations = 3)
    public Posterior kfac(Fitting f) {
        return fit(f.model, f.setup, f.pairs);
    }
}
