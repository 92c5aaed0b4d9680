package brm.realmodels;

import brm.bindings.cuda.CudaLibraries;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.lora.PeftAdapter;
import brm.reward.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The command line with --backend cuda against --backend cpu: train, laplace, then score with σ, each on both
 * backends from the same inputs. Here brm's CUDA library is the emulator (-Dbrm.cuda.library names it for the
 * test), which runs the same kernels as a GPU; on a GPU machine the device check runs the real one.
 */
class CliCudaTest {
    private static final String MODEL = Fixtures.dir("gpt_neox_parallel").toString();

    @TempDir
    Path tmp;
    private String previousLibrary;

    @BeforeEach
    void useTheEmulator() {
        assumeTrue(Files.isRegularFile(CudaLibraries.emulator()), "no emulator library built (scripts/build-native.sh)");
        previousLibrary = System.getProperty("brm.cuda.library");
        System.setProperty("brm.cuda.library", CudaLibraries.emulator().toString());
    }

    @AfterEach
    void restore() {
        if (previousLibrary == null) System.clearProperty("brm.cuda.library");
        else System.setProperty("brm.cuda.library", previousLibrary);
    }

    private Cli.Result run(String backend, String... args) {
        String[] all = new String[args.length + 2];
        System.arraycopy(args, 0, all, 0, args.length);
        all[args.length] = "--backend";
        all[args.length + 1] = backend;
        Cli.Result r = Cli.run(all);
        assertEquals(0, r.status(), args[0] + " --backend " + backend + ": " + r.err());
        return r;
    }

    @Test
    void trainLaplaceAndScoreAgreeWithTheCpu() throws IOException {
        Path data = tmp.resolve("train.jsonl"), in = tmp.resolve("in.jsonl");
        Files.write(data, CliTrainTest.pairLines(16, 3));
        Files.writeString(in, "{\"input_ids\": [11, 12, 13, 5]}\n{\"input_ids\": [40, 41, 9]}\n{\"input_ids\": [7]}\n");
        for (String backend : List.of("cpu", "cuda")) {
            Path adapter = tmp.resolve(backend);
            run(backend, "train", "--model", MODEL, "--data", data.toString(), "--out", adapter.toString(), "--epochs", "1", "--lr", "1e-2",
                    "--batch-size", "4", "--threads", "1");
            run(backend, "laplace", "--model", MODEL, "--adapter", adapter.toString(), "--data", data.toString(), "--threads", "1");
            run(backend, "score", "--model", MODEL, "--adapter", adapter.toString(), "--input", in.toString(),
                    "--output", tmp.resolve(backend + ".jsonl").toString());
        }
        try (SafetensorsFile cpu = SafetensorsFile.open(tmp.resolve("cpu").resolve(PeftAdapter.WEIGHTS));
             SafetensorsFile cuda = SafetensorsFile.open(tmp.resolve("cuda").resolve(PeftAdapter.WEIGHTS))) {
            for (var name : cpu.tensors().keySet()) {
                float[] a = cpu.floats(cpu.info(name)), b = cuda.floats(cuda.info(name));
                double scale = 0, error = 0;
                for (int i = 0; i < a.length; i++) {
                    scale = Math.max(scale, Math.abs(a[i]));
                    error = Math.max(error, Math.abs(a[i] - b[i]));
                }
                assertTrue(error <= 1e-4 * scale, "trained " + name + ": CUDA differs from the CPU by " + error + " of scale " + scale);
            }
        }
        List<String> cpu = Files.readAllLines(tmp.resolve("cpu.jsonl")), cuda = Files.readAllLines(tmp.resolve("cuda.jsonl"));
        assertEquals(3, cuda.size());
        for (int i = 0; i < cpu.size(); i++) {
            JsonNode a = Jsonl.JSON.readTree(cpu.get(i)), b = Jsonl.JSON.readTree(cuda.get(i));
            assertEquals(a.get("reward").asDouble(), b.get("reward").asDouble(), 1e-4 * Math.max(1, Math.abs(a.get("reward").asDouble())), "μ " + i);
            assertEquals(a.get("var").asDouble(), b.get("var").asDouble(), 1e-3 * a.get("var").asDouble(), "σ² " + i);
        }
    }

    @Test
    void cudaWithoutALibraryIsOneLineNamingIt() {
        System.setProperty("brm.cuda.library", tmp.resolve("libbrm_cuda.so").toString());
        Cli.Result r = Cli.run("score", "--model", MODEL, "--input", tmp.resolve("none.jsonl").toString(), "--output", "-", "--backend", "cuda");
        assertEquals(1, r.status());
        assertTrue(r.err().startsWith("brm score: --backend cuda: no CUDA library at " + tmp.resolve("libbrm_cuda.so")), r.err());
        assertEquals(1, r.errLines().size(), r.err());
    }
}
