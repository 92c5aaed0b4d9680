package brm.bench;

import brm.imports.llama2c.Llama2cImporter;
import brm.io.DataFolder;
import brm.policy.Generator;
import brm.policy.Sampler;
import brm.reward.CausalLM;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
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
 * Token generation (brm generate's work) on stories260K (Llama: dim 64, 5 layers, 8 heads / 4 kv heads of 8,
 * SwiGLU 172, vocab 512, tied head; imported from llama2.c, found in the data folder): `batch` samples from
 * the prompt BOS, each exactly 64 new tokens (no stop ids), drawn at temperature 1 from the full softmax, with
 * the KV cache and all samples decoded together (one prefill step, then 63 decode steps of `batch` rows).
 *
 * One op generates the whole batch: tokens/s = ops/s · batch · 64. The model is so small (about 0.5 MFLOP per
 * token) that the per-step overheads (op dispatch, the sampler's softmax over 512 logits) dominate, not FLOPs.
 * The PyTorch peer is benchmarks/pytorch/generate_peer.py.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
public class GenerateBenchmark {
    static final int NEW_TOKENS = 64;
    private static final String ORIGIN = "huggingface.co/karpathy/tinyllamas (stories260K)";

    @Param({"1", "64"})
    int batch;

    @Param({"1"})
    int threads;

    private Path dir;
    private CausalLM lm;
    private List<int[]> prompts;
    private long seed;

    @Setup
    public void setup() throws IOException {
        dir = Files.createTempDirectory("brm-bench-generate");
        Llama2cImporter.importModel(DataFolder.require("stories260K", "stories260K.bin", ORIGIN),
                DataFolder.require("stories260K", "tok512.bin", ORIGIN), dir.resolve("stories260K"), false);
        lm = CausalLM.open(dir.resolve("stories260K"), null, threads);
        prompts = Collections.nCopies(batch, new int[] {1});
    }

    @TearDown
    public void tearDown() throws IOException {
        lm.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Benchmark
    public List<Generator.Sample> generate() {
        return Generator.generate(lm, prompts, 1, new Generator.Options(NEW_TOKENS, new Sampler.Settings(1, 0, 1), seed++, batch, new int[0]), null);
    }
}
