package brm.bench;

import brm.backbone.RandomCheckpoint.NeoXShape;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Writes the random reward models the device check times brm and PyTorch on, so both score the same weights:
 * OUT/pythia-70m and OUT/pythia-410m, each a Hugging Face model directory (model/: config.json,
 * model.safetensors) and a PEFT adapter (adapter/: LoRA r = 8 on query_key_value, the head).
 *
 * usage: java -cp benchmarks.jar brm.bench.DeviceModels OUT [pythia-70m,pythia-410m]
 */
public final class DeviceModels {
    /** The two timed shapes, and a tiny one for device-check.sh --local (the script's plumbing on the emulator). */
    static final Map<String, NeoXShape> SHAPES = Map.of("pythia-70m", NeoXShape.PYTHIA_70M, "pythia-410m", NeoXShape.PYTHIA_410M,
            "tiny", new NeoXShape(50304, 64, 2, 4, 256, 0.25, 2048));

    private DeviceModels() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: DeviceModels OUT [pythia-70m,pythia-410m]");
            System.exit(2);
        }
        for (String name : (args.length == 2 ? args[1] : "pythia-70m,pythia-410m").split(",")) {
            NeoXShape shape = SHAPES.get(name);
            if (shape == null) throw new IllegalArgumentException("unknown model " + name + " (known: " + SHAPES.keySet() + ")");
            Path root = Path.of(args[0], name);
            Files.createDirectories(root);
            long start = System.nanoTime();
            LaplaceBench.create(root, shape);
            System.err.printf("%s: wrote %s in %.1f s%n", name, root, (System.nanoTime() - start) / 1e9);
        }
    }
}
