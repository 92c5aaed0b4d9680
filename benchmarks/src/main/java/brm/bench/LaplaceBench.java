package brm.bench;

import brm.backbone.ModelConfig;
import brm.backbone.RandomCheckpoint;
import brm.batch.PreferencePairs.Pair;
import brm.io.SafetensorsWriter;
import brm.laplace.Fisher;
import brm.laplace.Laplace;
import brm.laplace.Posterior;
import brm.laplace.Tokens;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * What the Laplace benchmarks share: a Pythia-70M-shaped GPT-NeoX (random weights, as
 * {@link ForwardBenchmark}) with a random nonzero rank-8 LoRA on query_key_value and a head, saved as
 * a PEFT adapter, random pairs of 2 × T tokens, and a posterior fitted on a few of them.
 */
final class LaplaceBench {
    private LaplaceBench() {}

    static final int VOCAB = 50277;

    /** Model and adapter directories under a fresh temporary folder. */
    record Setup(Path root, Path model, Path adapter, LoraAdapter lora) {
        void delete() throws IOException {
            try (Stream<Path> files = Files.walk(root)) {
                for (Path f : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(f);
            }
        }
    }

    static Setup create() throws IOException {
        return create(Files.createTempDirectory("brm-bench"), RandomCheckpoint.NeoXShape.PYTHIA_70M);
    }

    /** Writes root/model (random weights of the shape) and root/adapter (random LoRA and head, PEFT format). */
    static Setup create(Path root, RandomCheckpoint.NeoXShape shape) throws IOException {
        Path model = root.resolve("model"), adapterDir = root.resolve("adapter");
        Files.createDirectories(model);
        RandomCheckpoint.gptNeoX(model, shape, 7);
        ModelConfig config = ModelConfig.read(model);
        SplittableRandom random = new SplittableRandom(5);
        Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
        for (var m : config.linearModules()) {
            if (!m.path().endsWith("query_key_value")) continue;
            tensors.put(PeftAdapter.loraKey(m.path(), "A"), new SafetensorsWriter.Tensor(gaussian(random, 8 * m.in(), 0.05f), 8, m.in()));
            tensors.put(PeftAdapter.loraKey(m.path(), "B"), new SafetensorsWriter.Tensor(gaussian(random, m.out() * 8, 0.05f), m.out(), 8));
        }
        tensors.put(PeftAdapter.HEAD, new SafetensorsWriter.Tensor(gaussian(random, config.hiddenSize(), 0.05f), 1, config.hiddenSize()));
        PeftAdapter.write(adapterDir, model.toString(), 8, 16, 0, List.of("query_key_value"), tensors);
        return open(root);
    }

    /** A setup written earlier by {@link #create(Path, RandomCheckpoint.NeoXShape)} (e.g. by {@link DeviceModels}); delete() removes it. */
    static Setup open(Path root) {
        Path model = root.resolve("model"), adapter = root.resolve("adapter");
        return new Setup(root, model, adapter, PeftAdapter.load(adapter, ModelConfig.read(model)));
    }

    static float[] gaussian(SplittableRandom random, int n, float std) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (nextGaussian(random) * std);
        return x;
    }

    private static double nextGaussian(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    static List<Pair> pairs(int n, int tokens, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Pair> pairs = new ArrayList<>();
        for (int i = 0; i < n; i++) pairs.add(new Pair(i + 1, random.ints(tokens, 0, VOCAB).toArray(), random.ints(tokens, 0, VOCAB).toArray(), 0f));
        return pairs;
    }

    /** Fits and writes the posterior of the setup's adapter on n pairs of 2 × tokens. */
    static Posterior fit(Setup s, int n, int tokens, int threads) {
        try (var model = DifferentiableRewardModel.open(s.model(), s.lora(), threads, OptionalLong.empty(), 0f)) {
            Posterior p = Laplace.fit(model, s.lora(), pairs(n, tokens, 3), List.of(),
                    new Laplace.Options(Fisher.EXACT, Tokens.REDUCE, Laplace.Prior.MARGLIK, 0, false, 0, 1 << 20, 8, false, 0));
            p.write(s.adapter());
            return p;
        }
    }
}
