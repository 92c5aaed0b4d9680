package brm.cli;

import brm.BrmException;
import brm.backend.Backends;
import brm.backend.CudaBackend;
import brm.batch.PreferencePairs;
import brm.batch.Truncation;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Option;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** Option definitions and typed getters shared by the subcommands. */
final class Args {
    private Args() {}

    static Option value(String name, String arg, String description) {
        return Option.builder().longOpt(name).hasArg().argName(arg).desc(description).build();
    }

    static Option required(String name, String arg, String description) {
        return Option.builder().longOpt(name).hasArg().argName(arg).desc(description).required().build();
    }

    static Option flag(String name, String description) {
        return Option.builder().longOpt(name).desc(description).build();
    }

    /** --model, --adapter, --threads, --backend, --batch-size, and with a reward head --init-head. */
    static void addModel(Options o, boolean withHead) {
        o.addOption(required("model", "DIR", "Hugging Face model directory (config.json, model.safetensors, tokenizer.json)"));
        o.addOption(value("adapter", "ADIR", "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors)"));
        if (withHead) o.addOption(value("init-head", "SEED", "use a fresh score head drawn from SEED (needed when the model has none; an adapter's head still wins)"));
        addCompute(o);
        o.addOption(value("batch-size", "B", "sequences per forward pass (default 16)"));
    }

    /** --threads and --backend: where and how wide the models run. */
    static void addCompute(Options o) {
        o.addOption(value("threads", "N", "CPU compute threads (default: all cores, " + Runtime.getRuntime().availableProcessors() + ")"));
        o.addOption(value("backend", "cpu|cuda|auto", "where the models run (default auto: CUDA when brm's CUDA library loads and a GPU answers, else the CPU)"));
        o.addOption(value("precision", "fp32|bf16|fp16", "CUDA: the frozen weights' products in FP32 (default) or with 16-bit inputs on tensor cores (FP32 sums; LoRA, gradients and the rest stay FP32)"));
    }

    private static CudaBackend.Precision precision(CommandLine line) {
        String s = line.getOptionValue("precision", "fp32");
        try {
            return CudaBackend.Precision.valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--precision: '" + s + "' is not fp32, bf16 or fp16");
        }
    }

    /** --input, --output and the text rules. */
    static void addIo(Options o) {
        o.addOption(required("input", "IN.jsonl", "input JSONL: {\"id\"?, \"prompt\", \"response\"[, \"input\"]} or {\"id\"?, \"input_ids\": [...]}"));
        o.addOption(required("output", "OUT.jsonl", "output JSONL, one line per input line, same order (written atomically; - for standard output)"));
        addTextRules(o);
    }

    /** --template, --append-eos, --max-length, --truncate: how text lines become token ids. */
    static void addTextRules(Options o) {
        o.addOption(value("template", "none|alpaca|response|FILE", "how prompt and response become text (default none: prompt + response; response: the response alone)"));
        o.addOption(flag("append-eos", "append the model's eos token to text lines"));
        o.addOption(value("max-length", "L", "longest sequence in tokens (default: the model's position limit)"));
        o.addOption(value("truncate", "left|right|error", "what to do with longer lines (default error)"));
    }

    /** --skip-identical, for the commands that read preference pairs. */
    static void addPairOptions(Options o) {
        o.addOption(flag("skip-identical", "skip pairs whose two sides encode to the same tokens (listed on stderr) instead of failing"));
    }

    /** The pairs of the file named by option {@code name}; skipped lines are reported on stderr. */
    static List<PreferencePairs.Pair> readPairs(CommandLine line, String name, ModelSession session, boolean margins) {
        Path file = path(line, name);
        var read = PreferencePairs.read(file, session.encoder(true), margins, line.hasOption("skip-identical"));
        if (!read.skippedLines().isEmpty())
            System.err.println(file + ": skipped " + read.skippedLines().size() + " pairs whose sides encode identically (lines "
                    + read.skippedLines().stream().limit(20).map(String::valueOf).collect(Collectors.joining(", "))
                    + (read.skippedLines().size() > 20 ? ", ..." : "") + ")");
        return read.pairs();
    }

    static Path path(CommandLine line, String name) {
        return line.hasOption(name) ? Path.of(line.getOptionValue(name)) : null;
    }

    static int positiveInt(CommandLine line, String name, int fallback) {
        if (!line.hasOption(name)) return fallback;
        String s = line.getOptionValue(name);
        try {
            int v = Integer.parseInt(s);
            if (v >= 1) return v;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageException("--" + name + " must be a positive integer, got '" + s + "'");
    }

    /** A finite number ≥ min (or > min when exclusive). */
    static double number(CommandLine line, String name, double fallback, double min, boolean exclusive) {
        if (!line.hasOption(name)) return fallback;
        String s = line.getOptionValue(name);
        try {
            double v = Double.parseDouble(s);
            if (Double.isFinite(v) && (exclusive ? v > min : v >= min)) return v;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageException("--" + name + " must be a number " + (exclusive ? "> " : ">= ") + min + ", got '" + s + "'");
    }

    static Long optionalLong(CommandLine line, String name) {
        if (!line.hasOption(name)) return null;
        String s = line.getOptionValue(name);
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " must be an integer, got '" + s + "'");
        }
    }

    /** --truncate: a value other than left, right or error is bad usage, like any malformed option. */
    static Truncation truncation(CommandLine line) {
        try {
            return Truncation.parse(line.getOptionValue("truncate", "error"));
        } catch (BrmException e) {
            throw new UsageException(e.getMessage());
        }
    }

    /** --backend (default auto) and --precision (default fp32). */
    static Backends.Choice backend(CommandLine line) {
        try {
            return new Backends.Choice(Backends.Kind.parse(line.getOptionValue("backend", "auto")), precision(line));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--backend: " + e.getMessage());
        }
    }

    static int threads(CommandLine line) {
        return positiveInt(line, "threads", Runtime.getRuntime().availableProcessors());
    }
}
