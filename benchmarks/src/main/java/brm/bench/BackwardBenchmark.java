package brm.bench;

import brm.backend.Backend;
import brm.backend.CpuBackend;
import brm.backend.Heads;
import brm.backend.Packing;
import brm.backend.Tensor;
import java.util.ArrayList;
import java.util.List;
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
 * One op of a Pythia-70M-shaped GPT-NeoX layer (hidden 512, 8 heads of 64, intermediate 2048) forward
 * and backward on the CPU backend, at a LoRA training step's batch: 16 sequences of 256 tokens
 * (8 preference pairs), 4096 rows, 1 or 2 threads. Time per call, so backward / forward is the ratio of
 * the two scores for the same op:
 *
 *   qkv, dense, up, down  linear 512→1536, 512→512, 512→2048, 2048→512 with LoRA r = 8;
 *                         backward: dx += dy·W + LoRA's dx, dA, dB (2× the forward's FLOPs)
 *   attention             causal, fused qkv layout; backward recomputes P: 5 products to the forward's 2
 *   layerNorm             [4096, 512]
 *   gelu                  [4096, 2048]
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx4g"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public class BackwardBenchmark {
    @Param({"qkv", "dense", "up", "down", "attention", "layerNorm", "gelu"})
    String op;

    @Param({"1", "2"})
    int threads;

    private static final int SEQS = 16, SEQ = 256, ROWS = SEQS * SEQ, HIDDEN = 512, HEADS = 8, DIM = 64, RANK = 8;

    private Backend be;
    private final Random random = new Random(5);
    private Tensor x, y, dy, dx, dA, dB, weight, bias;
    private Backend.Weight w;
    private Backend.Lora lora;
    private Packing packing;
    private Heads[] qkv, dqkv;

    @Setup
    public void setup() {
        be = new CpuBackend(threads);
        switch (op) {
            case "qkv" -> linear(HIDDEN, 3 * HIDDEN);
            case "dense" -> linear(HIDDEN, HIDDEN);
            case "up" -> linear(HIDDEN, 4 * HIDDEN);
            case "down" -> linear(4 * HIDDEN, HIDDEN);
            case "attention" -> {
                List<int[]> seqs = new ArrayList<>();
                for (int s = 0; s < SEQS; s++) seqs.add(new int[SEQ]);
                packing = Packing.of(seqs);
                Tensor t = tensor(ROWS, 3 * HIDDEN, 1), d = be.allocate(ROWS, 3 * HIDDEN);
                qkv = new Heads[3];
                dqkv = new Heads[3];
                for (int part = 0; part < 3; part++) {
                    qkv[part] = new Heads(t, part * DIM, 3 * DIM, HEADS, DIM);
                    dqkv[part] = new Heads(d, part * DIM, 3 * DIM, HEADS, DIM);
                }
                y = be.allocate(ROWS, HIDDEN);
                dy = tensor(ROWS, HIDDEN, 1);
            }
            case "layerNorm" -> elementwise(HIDDEN);
            case "gelu" -> elementwise(4 * HIDDEN);
            default -> throw new IllegalArgumentException(op);
        }
    }

    private void linear(int in, int out) {
        x = tensor(ROWS, in, 1);
        y = be.allocate(ROWS, out);
        dy = tensor(ROWS, out, 1);
        dx = be.allocate(ROWS, in);
        w = be.weight(values(out * in, 0.05), values(out, 0.1), out, in, true);
        lora = new Backend.Lora(tensor(RANK, in, 0.05), tensor(out, RANK, 0.05), 2f);
        dA = be.allocate(RANK, in);
        dB = be.allocate(out, RANK);
    }

    private void elementwise(int cols) {
        x = tensor(ROWS, cols, 1);
        y = be.allocate(ROWS, cols);
        dy = tensor(ROWS, cols, 1);
        dx = be.allocate(ROWS, cols);
        weight = tensor(1, cols, 1);
        bias = tensor(1, cols, 1);
    }

    private float[] values(int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (random.nextGaussian() * scale);
        return v;
    }

    private Tensor tensor(int rows, int cols, double scale) {
        return be.upload(values(rows * cols, scale), rows, cols);
    }

    @TearDown
    public void tearDown() {
        be.close();
    }

    @Benchmark
    public Tensor forward() {
        switch (op) {
            case "attention" -> be.attention(packing, qkv[0], qkv[1], qkv[2], true, 0.125f, y);
            case "layerNorm" -> be.layerNorm(x, weight, bias, 1e-5f, y);
            case "gelu" -> be.gelu(x, y);
            default -> be.linear(x, w, lora, y);
        }
        return y;
    }

    /** Accumulating gradients are not re-zeroed between calls: += costs the same on any values. */
    @Benchmark
    public Tensor backward() {
        switch (op) {
            case "attention" -> be.attentionBackward(packing, qkv[0], qkv[1], qkv[2], true, 0.125f, dy, dqkv[0], dqkv[1], dqkv[2]);
            case "layerNorm" -> be.layerNormBackward(x, weight, 1e-5f, dy, dx);
            case "gelu" -> be.geluBackward(x, dy, dx);
            default -> be.linearBackward(x, w, lora, dy, dx, dA, dB);
        }
        return dx;
    }
}
