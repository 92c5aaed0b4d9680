package brm.backend;

import brm.BrmException;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.CudaLibraries;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Which backend the model APIs open ({@code --backend cpu|cuda|auto}): {@link #create} gives a CPU backend,
 * a CUDA backend on brm's CUDA library ({@link CudaLibraries#gpu}), or with {@code auto} the CUDA one when the
 * library loads and a device answers, else the CPU one after one line on stderr saying why. The choice is
 * process-wide (the CLI sets it once; brm spark-score's executors take theirs from the ScoreSpec); the default is
 * the CPU. Model APIs that take a {@link Backend} ignore it.
 */
public final class Backends {
    public enum Kind {
        CPU, CUDA, AUTO;

        public static Kind parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("backend '" + s + "' is not cpu, cuda or auto");
            }
        }
    }

    /** A kind and, on CUDA, the precision of the frozen weights' products: what --backend and --precision say. */
    public record Choice(Kind kind, CudaBackend.Precision precision) implements Serializable {
        public static final Choice CPU = new Choice(Kind.CPU, CudaBackend.Precision.FP32);

        public Choice {
            Objects.requireNonNull(kind);
            Objects.requireNonNull(precision);
        }
    }

    private static volatile Choice selected = Choice.CPU;
    /** brm's CUDA library by path, once opened: the Cuda, or why it cannot be used (a String). */
    private static final Map<Path, Object> libraries = new HashMap<>();
    private static boolean fallbackReported;

    private Backends() {}

    public static void select(Choice choice) {
        selected = choice;
    }

    public static Choice selected() {
        return selected;
    }

    /** A new backend of the selected kind; {@code threads} sizes the CPU backend. */
    public static Backend create(int threads) {
        return create(selected, threads);
    }

    /** A new backend of the given kind; {@code threads} sizes the CPU backend. */
    public static Backend create(Choice choice, int threads) {
        CudaBackend.Precision precision = choice.precision();
        return switch (choice.kind()) {
            case CPU -> new CpuBackend(threads);
            case CUDA -> {
                Object cuda = gpu();
                if (cuda instanceof Cuda c) yield new CudaBackend(c, precision);
                throw new BrmException("--backend cuda: " + cuda);
            }
            case AUTO -> {
                Object cuda = gpu();
                if (cuda instanceof Cuda c) yield new CudaBackend(c, precision);
                synchronized (Backends.class) {
                    if (!fallbackReported) System.err.println("brm: CPU backend (" + cuda + ")");
                    fallbackReported = true;
                }
                yield new CpuBackend(threads);
            }
        };
    }

    /** brm's CUDA library ({@link CudaLibraries#gpu}) with a device behind it, opened once per path; else why not. */
    private static synchronized Object gpu() {
        return libraries.computeIfAbsent(CudaLibraries.gpu(), path -> {
            try {
                Optional<Cuda> cuda = Cuda.open(path);
                return cuda.isPresent() ? cuda.get() : "no CUDA library at " + path + " (built by scripts/build-native.sh where nvcc is found)";
            } catch (RuntimeException e) {
                return "CUDA library " + path + " found no usable device: " + e.getMessage();
            }
        });
    }
}
