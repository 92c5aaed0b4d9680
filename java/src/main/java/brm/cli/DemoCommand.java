package brm.cli;

import brm.BrmException;
import brm.bon.BonReport;
import brm.bon.Curves;
import brm.bon.Ranker;
import brm.bon.Scored;
import brm.imports.llama2c.Llama2cImporter;
import brm.imports.onnx.MavenJars;
import brm.imports.onnx.OnnxImporter;
import brm.io.AtomicFiles;
import brm.io.DataFolder;
import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * brm demo: the best-of-n over-optimisation experiment of the paper, end to end on real weights, as a
 * chain of brm's own commands (each stage's command line is printed, so any stage can be rerun by hand):
 *
 *   policy    stories260K (llama2.c, imported) samples a pool of N continuations per story opening
 *   gold      bge-small-en-v1.5: sentiment(continuation) + 2·relevance(continuation, opening) (brm gold)
 *   labels    K pairs per prompt of separate policy samples, Bradley–Terry on gold with β, label noise (brm label)
 *   proxies   all-MiniLM-L6-v2 + LoRA + head per seed, reading the continuation only (brm ensemble train),
 *             each with its Laplace posterior (brm laplace)
 *   scores    each proxy on the pool: μ, σ, σ relative to the prompt's pool, features (brm score)
 *   bon       gold of best-of-n against KL for MAP, μ − kσ, μ − kσ², relative σ, typicality, oracle over
 *             (seed, prompt) pools, and the ensembles mean, WCO, UWO, LA-ensemble over prompts
 *
 * The proxy never sees the prompt, so relevance, two thirds of the gold's scale, is what it cannot learn
 * from few noisy labels: the over-optimisation this experiment is about. A stage whose outputs exist
 * from the same settings is skipped, so an interrupted demo resumes where it stopped.
 */
final class DemoCommand implements Command {
    /** The settings of one scale; every one is also a flag. */
    private record Scale(int prompts, int n, int trainSamples, int pairsPerPrompt, String seeds) {}

    /** stories260K ends a story with BOS (1), as llama2.c's training data does, and never emits its eos (2). */
    private static final String STORY_END = "1,2";

    /** The curves drawn: the oracle's ceiling would flatten the rest, and the table has every ranker. */
    private static final String PLOTTED = "map,std:1,std-rel:1,var-rel:0.04,typicality,mean,uwo:0.5,la-std:0.25";

    private static final Map<String, Scale> SCALES = Map.of(
            "small", new Scale(32, 64, 8, 3, "1,2,3"),
            "full", new Scale(35, 1024, 16, 6, "1,2,3"));

    @Override
    public String name() {
        return "demo";
    }

    @Override
    public String summary() {
        return "the best-of-n over-optimisation experiment end to end on real weights (writes runs/demo: curves.csv, curves.png, report.md)";
    }

    @Override
    public String details() {
        return """
                Policy stories260K, gold bge-small-en-v1.5 (sentiment + 2 x relevance of the continuation), proxies all-MiniLM-L6-v2
                + LoRA trained on gold-labelled noisy pairs, reading the continuation only; Laplace on each proxy; best-of-n curves
                of MAP, Laplace penalties (raw and pool-relative sigma), ensembles, typicality and the oracle. --scale small (the
                default, about 6 minutes on 2 cores) or full (pool size 1024, about 75 minutes). Stages already done with the same
                settings are skipped; --fresh redoes them.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.value("out", "DIR", "output folder (default runs/demo, or runs/demo-full with --scale full)"));
        o.addOption(Args.value("scale", "small|full", "preset sizes below (default small)"));
        o.addOption(Args.value("prompts", "P", "story openings (small 32, full 35; at most 35)"));
        o.addOption(Args.value("n", "N", "pool size per prompt, the largest n of best-of-n (small 64, full 1024)"));
        o.addOption(Args.value("train-samples", "M", "policy samples per prompt to label for training (small 8, full 16)"));
        o.addOption(Args.value("pairs", "K", "labelled pairs per prompt (small 3, full 6)"));
        o.addOption(Args.value("seeds", "S1,S2,..", "proxy seeds, also the ensemble's members (default 1,2,3)"));
        o.addOption(Args.value("beta", "B", "Bradley-Terry inverse temperature of the gold labels (default 3)"));
        o.addOption(Args.value("noise", "P", "label noise: probability of flipping a label (default 0.25)"));
        o.addOption(Args.value("max-new-tokens", "T", "continuation length (default 64)"));
        o.addOption(Args.value("epochs", "E", "proxy training epochs (default 8)"));
        o.addOption(Args.value("lr", "LR", "proxy learning rate (default 2e-3)"));
        o.addOption(Args.value("rankers", "LIST", "single-proxy rankers (default map, std/var/std-rel/var-rel at two k each, typicality, oracle)"));
        o.addOption(Args.value("ensemble-rankers", "LIST", "ensemble rankers (default mean, wco, uwo:0.5, la-std:0.25, la-var:0.01)"));
        o.addOption(Args.value("plot-rankers", "LIST", "the rankers drawn in curves.png (default " + PLOTTED + "; the table has all)"));
        Args.addCompute(o);
        o.addOption(Args.flag("fresh", "redo every stage even when its outputs exist"));
        return o;
    }

    @Override
    public void run(CommandLine line) throws IOException {
        String scaleName = line.getOptionValue("scale", "small");
        Scale scale = SCALES.get(scaleName);
        if (scale == null) throw new UsageException("--scale must be small or full, got '" + scaleName + "'");
        Path out = Path.of(line.getOptionValue("out", scaleName.equals("small") ? "runs/demo" : "runs/demo-" + scaleName));
        int prompts = Args.positiveInt(line, "prompts", scale.prompts()), n = Args.positiveInt(line, "n", scale.n());
        int trainSamples = Args.positiveInt(line, "train-samples", scale.trainSamples()), pairs = Args.positiveInt(line, "pairs", scale.pairsPerPrompt());
        if (n < 2) throw new UsageException("--n must be at least 2");
        List<String> seeds = List.of(line.getOptionValue("seeds", scale.seeds()).split(","));
        String threads = Integer.toString(Args.threads(line)), backend = Args.backend(line).kind().name().toLowerCase(Locale.ROOT),
                precision = Args.backend(line).precision().name().toLowerCase(Locale.ROOT);
        String beta = line.getOptionValue("beta", "3"), noise = line.getOptionValue("noise", "0.25");
        String tokens = line.getOptionValue("max-new-tokens", "64"), epochs = line.getOptionValue("epochs", "8"), lr = line.getOptionValue("lr", "2e-3");
        List<Ranker> singleRankers = BonCommand.rankers(line.getOptionValue("rankers", "map,std:0.25,std:1,var:0.01,var:0.04,std-rel:0.25,std-rel:1,var-rel:0.01,var-rel:0.04,typicality,oracle"));
        List<Ranker> ensembleRankers = BonCommand.rankers(line.getOptionValue("ensemble-rankers", "mean,wco,uwo:0.5,la-std:0.25,la-var:0.01"));
        Stages stages = new Stages(out, line.hasOption("fresh"));

        Path models = out.resolve("models"), policy = models.resolve("stories260K"), goldModel = models.resolve("bge-small-en-v1.5"),
                proxyModel = models.resolve("all-MiniLM-L6-v2");
        stages.run("import", "", List.of(policy, goldModel, proxyModel), () -> {
            Path checkpoint = DataFolder.require("stories260K", "stories260K.bin", "huggingface.co/karpathy/tinyllamas (stories260K)");
            Path tokenizer = DataFolder.require("stories260K", "tok512.bin", "huggingface.co/karpathy/tinyllamas (stories260K)");
            Llama2cImporter.importModel(checkpoint, tokenizer, policy, false);
            OnnxImporter.importJar(MavenJars.find("bge-small-en-v15"), goldModel, false);
            OnnxImporter.importJar(MavenJars.find("all-minilm-l6-v2"), proxyModel, false);
        });

        Path promptFile = out.resolve("prompts.jsonl");
        stages.run("prompts", "prompts=" + prompts, List.of(promptFile), () -> writePrompts(prompts, promptFile));

        Path pool = out.resolve("pool.jsonl"), train = out.resolve("train-samples.jsonl");
        String sampling = "tokens=" + tokens + " temperature=1";
        stages.run("generate pool", sampling + " n=" + n + " seed=1", List.of(pool), () -> brm("generate", "--model", policy, "--prompts", promptFile,
                "--n", n, "--max-new-tokens", tokens, "--temperature", "1", "--stop-ids", STORY_END, "--seed", "1", "--batch-size", "64", "--threads", threads, "--backend", backend, "--precision", precision,
                "--output", pool));
        stages.run("generate training samples", sampling + " n=" + trainSamples + " seed=2", List.of(train), () -> brm("generate", "--model", policy,
                "--prompts", promptFile, "--n", trainSamples, "--max-new-tokens", tokens, "--temperature", "1", "--stop-ids", STORY_END, "--seed", "2", "--batch-size", "64",
                "--threads", threads, "--backend", backend, "--precision", precision, "--output", train));

        Path poolGold = out.resolve("pool-gold.jsonl"), trainGold = out.resolve("train-gold.jsonl");
        stages.run("gold pool", "", List.of(poolGold), () -> brm("gold", "--encoder", goldModel, "--input", pool, "--output", poolGold, "--threads", threads, "--backend", backend, "--precision", precision));
        stages.run("gold training samples", "", List.of(trainGold), () -> brm("gold", "--encoder", goldModel, "--input", train, "--output", trainGold,
                "--threads", threads, "--backend", backend, "--precision", precision));

        Path pairFile = out.resolve("pairs.jsonl");
        stages.run("label", "pairs=" + pairs + " beta=" + beta + " noise=" + noise, List.of(pairFile), () -> brm("label", "--input", trainGold,
                "--pairs", pairs, "--beta", beta, "--noise", noise, "--seed", "3", "--output", pairFile));

        Path proxies = out.resolve("proxies");
        List<Path> members = seeds.stream().map(s -> proxies.resolve("seed-" + s.strip())).toList();
        stages.run("train proxies", "seeds=" + seeds + " epochs=" + epochs + " lr=" + lr, members, () -> {
            deleteTree(proxies);
            brm("ensemble", "train", "--seeds", String.join(",", seeds), "--model", proxyModel, "--data", pairFile, "--out", proxies,
                    "--template", "response", "--epochs", epochs, "--lr", lr, "--batch-size", "8", "--threads", threads, "--backend", backend, "--precision", precision);
        });

        List<Path> scoredFiles = new ArrayList<>();
        for (int m = 0; m < members.size(); m++) {
            Path member = members.get(m), scored = out.resolve("scored-seed-" + seeds.get(m).strip() + ".jsonl");
            scoredFiles.add(scored);
            stages.run("laplace " + member.getFileName(), "", List.of(member.resolve("posterior.safetensors")), () -> brm("laplace",
                    "--model", proxyModel, "--adapter", member, "--data", pairFile, "--template", "response", "--threads", threads, "--backend", backend, "--precision", precision));
            stages.run("score " + member.getFileName(), "", List.of(scored), () -> brm("score", "--model", proxyModel, "--adapter", member,
                    "--input", poolGold, "--output", scored, "--template", "response", "--relative-by", "prompt_id",
                    "--keep-fields", "prompt_id,sample_id,gold", "--features", "--threads", threads, "--backend", backend, "--precision", precision));
        }

        Path single = out.resolve("scored-single.jsonl"), ensemble = out.resolve("scored-ensemble.jsonl");
        stages.run("combine", "", List.of(single, ensemble), () -> combine(seeds, scoredFiles, single, ensemble));

        int[] grid = grid(n);
        long start = System.nanoTime();
        List<BonReport.Input> inputs = new ArrayList<>(List.of(new BonReport.Input(Scored.read(single), singleRankers)));
        if (seeds.size() > 1) inputs.add(new BonReport.Input(Scored.read(ensemble), ensembleRankers));
        List<Curves.Row> rows = new ArrayList<>();
        for (BonReport.Input input : inputs) rows.addAll(Curves.of(input.scored(), input.rankers(), grid));
        stages.timings.put("best-of-n", String.format(Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9));
        int largest = grid[grid.length - 1];
        List<Curves.Difference> differences = new ArrayList<>();
        for (BonReport.Input input : inputs) {
            Ranker baseline = input.rankers().stream().filter(r -> r.kind() == Ranker.Kind.MAP || r.kind() == Ranker.Kind.MEAN).findFirst().orElse(null);
            if (baseline != null)
                for (Ranker r : input.rankers()) if (r != baseline) differences.add(Curves.difference(input.scored(), r, baseline, largest));
        }
        String notes = notes(prompts, n, trainSamples, pairs, seeds, beta, noise, tokens, epochs, lr, stages.timings) + differences(differences);
        Set<String> plotted = new HashSet<>(List.of(line.getOptionValue("plot-rankers", PLOTTED).split(",")));
        BonReport.write(out.resolve("curves.csv"), out.resolve("curves.png"), out.resolve("report.md"),
                "Best-of-n over-optimisation: brm demo --scale " + scaleName, inputs, grid, rows,
                rows.stream().filter(r -> plotted.contains(r.ranker())).toList(), notes);
        System.out.println(summary(rows, largest) + "\n" + differences(differences));
        System.out.println("demo: wrote " + out.resolve("curves.csv") + ", " + out.resolve("curves.png") + " and " + out.resolve("report.md"));
    }

    /**
     * Runs stages in order, skipping one whose outputs exist and whose marker (OUT/.stages/NAME: its settings
     * line, then its wall time in seconds) holds the same settings; records wall times, a skipped stage's
     * from its marker (marked as from an earlier run).
     */
    private static final class Stages {
        private final Path markers;
        private final boolean fresh;
        final Map<String, String> timings = new LinkedHashMap<>();
        private int number;

        Stages(Path out, boolean fresh) throws IOException {
            this.markers = Files.createDirectories(out.resolve(".stages"));
            this.fresh = fresh;
        }

        void run(String name, String settings, List<Path> outputs, Body body) {
            number++;
            Path marker = markers.resolve(name.replace(' ', '-'));
            try {
                String[] done = Files.exists(marker) ? Files.readString(marker).split("\n", -1) : null;
                if (!fresh && done != null && done[0].equals(settings) && outputs.stream().allMatch(Files::exists)) {
                    System.out.printf(Locale.ROOT, "demo %2d. %s: done before (%s), skipped%n", number, name, marker);
                    timings.put(name, done.length > 1 && !done[1].isBlank() ? done[1].strip() + " (earlier run)" : "earlier run");
                    return;
                }
                Files.deleteIfExists(marker);
                System.out.printf(Locale.ROOT, "demo %2d. %s ...%n", number, name);
                long start = System.nanoTime();
                body.run();
                String seconds = String.format(Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9);
                timings.put(name, seconds);
                AtomicFiles.write(marker, o -> o.write((settings + "\n" + seconds + "\n").getBytes(StandardCharsets.UTF_8)));
                System.out.printf(Locale.ROOT, "demo %2d. %s: %s s%n", number, name, seconds);
            } catch (IOException e) {
                throw new BrmException(marker + ": " + e.getMessage());
            }
        }
    }

    @FunctionalInterface
    private interface Body {
        void run() throws IOException;
    }

    /** Runs a brm command in this JVM, printing its command line; a failure stops the demo. */
    private static void brm(Object... args) {
        String[] words = Arrays.stream(args).map(String::valueOf).toArray(String[]::new);
        System.out.println("   brm " + String.join(" ", words));
        if (Main.run(words) != Main.OK) throw new BrmException("demo: brm " + words[0] + " failed (its error is above)");
    }

    /** The first sentence of each TinyStories sample story, then brm's own openings, the first {@code count}. */
    static List<String> openings(int count) throws IOException {
        List<String> all = new ArrayList<>();
        Path sample = DataFolder.require("tinystories-sample", "tinystories_sample.txt", "the TinyStories data set (roneneldan/TinyStories)");
        for (String story : Files.readString(sample, StandardCharsets.UTF_8).split("<\\|endoftext\\|>")) {
            String s = story.strip().replaceAll("\\s+", " ");
            int end = s.indexOf(". ");
            if (end > 0) all.add(s.substring(0, end + 1));
        }
        try (InputStream in = DemoCommand.class.getResourceAsStream("/brm/demo/openings.txt")) {
            if (in == null) throw new BrmException("brm.jar has no /brm/demo/openings.txt (a broken build)");
            for (String l : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n"))
                if (!l.isBlank() && !l.startsWith("#")) all.add(l.strip());
        }
        if (count > all.size()) throw new UsageException("--prompts " + count + ": there are " + all.size() + " story openings");
        return all.subList(0, count);
    }

    private static void writePrompts(int count, Path file) throws IOException {
        List<String> openings = openings(count);
        AtomicFiles.write(file, o -> {
            for (int i = 0; i < openings.size(); i++)
                Jsonl.writeLine(o, Jsonl.JSON.createObjectNode().put("id", String.format(Locale.ROOT, "p%02d", i + 1)).put("prompt", openings.get(i)));
        });
    }

    /**
     * single: every seed's lines, prompt_id "s{seed}/{prompt}", so that single-proxy curves average over
     * (seed, prompt) pools; ensemble: one line per sample with "rewards" and "vars" of every member and
     * "reward" their mean. The members' files list the same samples in the same order (same input).
     */
    private static void combine(List<String> seeds, List<Path> files, Path single, Path ensemble) {
        List<List<Jsonl.Line>> scored = files.stream().map(Jsonl::read).toList();
        int lines = scored.getFirst().size();
        for (int m = 1; m < scored.size(); m++)
            if (scored.get(m).size() != lines) throw new BrmException(files.get(m) + ": " + scored.get(m).size() + " lines, " + files.getFirst() + " has " + lines);
        AtomicFiles.write(single, o -> {
            for (int m = 0; m < scored.size(); m++)
                for (Jsonl.Line l : scored.get(m)) {
                    ObjectNode v = l.value().deepCopy();
                    v.put("prompt_id", "s" + seeds.get(m).strip() + "/" + v.get("prompt_id").asText());
                    Jsonl.writeLine(o, v);
                }
        });
        AtomicFiles.write(ensemble, o -> {
            for (int i = 0; i < lines; i++) {
                JsonNode first = scored.getFirst().get(i).value();
                ObjectNode v = Jsonl.JSON.createObjectNode();
                v.set("prompt_id", first.get("prompt_id"));
                v.set("sample_id", first.get("sample_id"));
                v.set("gold", first.get("gold"));
                ArrayNode rewards = v.putArray("rewards"), vars = v.putArray("vars");
                double sum = 0;
                for (int m = 0; m < scored.size(); m++) {
                    JsonNode line = scored.get(m).get(i).value();
                    if (!line.get("sample_id").equals(first.get("sample_id")) || !line.get("prompt_id").equals(first.get("prompt_id")))
                        throw new BrmException(files.get(m) + ":" + (i + 1) + ": sample differs from " + files.getFirst() + ":" + (i + 1));
                    rewards.add(line.get("reward").asDouble());
                    vars.add(line.get("var").asDouble());
                    sum += line.get("reward").asDouble();
                }
                v.put("reward", sum / scored.size());
                Jsonl.writeLine(o, v);
            }
        });
    }

    /** 1, 2, 4, ... up to n, and n itself. */
    static int[] grid(int n) {
        IntStream powers = IntStream.iterate(1, k -> k < n, k -> 2 * k);
        return IntStream.concat(powers, IntStream.of(n)).toArray();
    }

    private static String notes(int prompts, int n, int trainSamples, int pairs, List<String> seeds, String beta, String noise, String tokens,
                                String epochs, String lr, Map<String, String> timings) {
        StringBuilder b = new StringBuilder("## Settings\n\n");
        b.append("- policy: stories260K (llama2.c, imported), temperature 1, ").append(tokens).append(" new tokens; ").append(prompts)
                .append(" story openings; pool of ").append(n).append(" samples per prompt (seed 1)\n");
        b.append("- gold: bge-small-en-v1.5, sentiment (cos to a happy, kind story − cos to a sad, mean one) + 2 × relevance (cos(continuation, opening))\n");
        b.append("- labels: ").append(trainSamples).append(" further samples per prompt (seed 2), ").append(pairs).append(" pairs per prompt (")
                .append(prompts * pairs).append(" pairs), Bradley–Terry β = ").append(beta).append(", label noise ").append(noise).append('\n');
        b.append("- proxies: all-MiniLM-L6-v2 + LoRA (r 8 on query, value) + head, reading the continuation only; seeds ")
                .append(String.join(", ", seeds)).append("; ").append(epochs).append(" epochs, lr ").append(lr).append("; Laplace (K-FAC, marginal-likelihood prior) on each\n");
        b.append("- single-proxy rankers average over (seed, prompt) pools (").append(seeds.size() * prompts)
                .append("); ensemble rankers over prompts (").append(prompts).append(")\n\n## Wall time per stage\n\n| stage | seconds |\n|---|---:|\n");
        timings.forEach((stage, s) -> b.append("| ").append(stage).append(" | ").append(s).append(" |\n"));
        return b.toString();
    }

    /** Gold at the largest n of each ranker. */
    private static String summary(List<Curves.Row> rows, int largest) {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "gold at n = %d:%n", largest));
        for (Curves.Row r : rows)
            if (r.n() == largest) b.append(String.format(Locale.ROOT, "  %-14s %.4f ± %.4f%n", r.ranker(), r.gold(), r.goldSe()));
        return b.toString();
    }

    /** A Markdown table of each ranker's gold at the largest n minus its baseline's, paired by pool. */
    private static String differences(List<Curves.Difference> differences) {
        if (differences.isEmpty()) return "";
        StringBuilder b = new StringBuilder("\n## Gold at the largest n against the baseline, paired by pool\n\n| ranker | baseline | n | gold − baseline | s.e. |\n|---|---|---:|---:|---:|\n");
        for (Curves.Difference d : differences)
            b.append(String.format(Locale.ROOT, "| %s | %s | %d | %+.4f | %.4f |%n", d.ranker(), d.baseline(), d.n(), d.gold(), d.goldSe()));
        return b.toString();
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
