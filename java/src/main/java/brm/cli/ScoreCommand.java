package brm.cli;

import brm.BrmException;
import brm.batch.LineEncoder;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.laplace.BayesianRewardModel;
import brm.laplace.Posterior;
import brm.laplace.Predictive;
import brm.lora.PeftAdapter;
import brm.reward.Logistic;
import brm.score.ScoreSpec;
import brm.score.Scorer;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** brm score: one reward per input line, with the Laplace posterior's uncertainty when the adapter has one. */
final class ScoreCommand implements Command {
    @Override
    public String name() {
        return "score";
    }

    @Override
    public String summary() {
        return "score JSONL lines with a reward model (+ LoRA adapter, + Laplace posterior): {\"id\", \"reward\"[, \"var\", \"std\"]} per line";
    }

    @Override
    public String details() {
        return """
                Each output line is {"id": the input's id (its line number when it has none), "reward": float}. When the adapter
                directory holds posterior.safetensors (brm laplace), "reward" is the mean μ and the line adds "var" (σ²) and "std"
                (σ), and with --k "penalized" = μ - k·σ (--penalty std, the default) or μ - k·σ² (--penalty var); --no-uncertainty
                skips the posterior. --pairs reads pair lines ({"prompt", "chosen", "rejected"} or {"chosen_ids", "rejected_ids"})
                and writes {"id", "reward_chosen", "reward_rejected", "margin" (μ_Δ), "margin_var" (var(Δ) with the covariance;
                posterior only), "p_chosen" (σ(μ_Δ / sqrt(1 + π·var(Δ)/8)), σ(μ_Δ) without a posterior)}.
                --relative-by FIELD (with a posterior) groups lines by that input field (e.g. prompt_id: a prompt's pool of
                responses) and adds "var_rel"/"std_rel", the uncertainty of r(x) - r̄ with r̄ the pool's mean reward (the part of
                σ every response to a prompt shares cancels); the model runs once, the lines and their coefficients waiting in
                temporary files until every group's mean is known. --penalty std_rel|var_rel penalise by it.
                --keep-fields F1,F2 copies those input fields into the output lines (e.g. prompt_id,sample_id,gold for brm bon).
                --ensemble DIR (the seed-* adapters of brm ensemble train) or ADIR1,ADIR2,... scores with every member: "rewards"
                (one per member, in order), "vars" when every member has a posterior, and "reward" their mean. --features adds
                "features", the pooled hidden state the head reads (for brm bon's label-free typicality ranker).""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, true);
        Args.addIo(o);
        o.addOption(Args.flag("pairs", "score preference pairs instead of single responses"));
        o.addOption(Args.value("k", "K", "add \"penalized\" = μ - K·σ (or - K·σ²) (needs a posterior)"));
        o.addOption(Args.value("penalty", "std|var|std_rel|var_rel", "what --k multiplies (default std)"));
        o.addOption(Args.value("relative-by", "FIELD", "also σ relative to the mean reward of the lines sharing this input field"));
        o.addOption(Args.value("keep-fields", "F1,F2", "copy these input fields into the output lines"));
        o.addOption(Args.value("ensemble", "DIR|ADIR1,ADIR2", "score with every member adapter (a brm ensemble train folder, or a list)"));
        o.addOption(Args.flag("features", "add \"features\": the pooled hidden state the head reads (brm bon's typicality ranker)"));
        o.addOption(Args.flag("no-uncertainty", "ignore the adapter's posterior: rewards only"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ScoreSpec spec = spec(line, Runtime.getRuntime().availableProcessors());
        Path input = Args.path(line, "input"), output = Args.path(line, "output");
        boolean pairs = line.hasOption("pairs");
        String relativeBy = line.getOptionValue("relative-by");
        if (relativeBy != null && !spec.posterior())
            throw new UsageException("--k and --relative-by need an adapter with a posterior (brm laplace) and no --no-uncertainty");
        if (relativeBy != null && pairs) throw new UsageException("--relative-by scores single responses, not --pairs");
        if (spec.penalty().relative() && relativeBy == null) throw new UsageException("--penalty " + line.getOptionValue("penalty") + " needs --relative-by");
        List<String> keep = new ArrayList<>();
        if (line.hasOption("keep-fields")) for (String f : line.getOptionValue("keep-fields").split(",")) if (!f.isBlank()) keep.add(f.strip());
        if (relativeBy != null && !keep.contains(relativeBy)) keep.add(relativeBy);
        boolean features = line.hasOption("features");
        if (features && pairs) throw new UsageException("--features goes with single responses, not --pairs");
        if (line.hasOption("ensemble")) {
            if (spec.adapter() != null || pairs || relativeBy != null || line.hasOption("k") || features)
                throw new UsageException("--ensemble scores single responses with its members alone: no --adapter, --pairs, --relative-by, --k or --features");
            ensemble(line, spec, input, output, keep);
            return;
        }
        try (Scorer scorer = Scorer.open(spec, pairs ? 2 * spec.batchSize() : spec.batchSize())) {
            Batches.Compute compute = (batch, outputs) -> {
                float[][] f = features ? new float[batch.size()][] : null;
                Predictive.Batch b = scorer.score(batch, pairs, f);
                for (int i = 0; i < outputs.size(); i++) {
                    ObjectNode o = outputs.get(i);
                    if (f != null) o.set("features", Jsonl.JSON.valueToTree(f[i]));
                    if (pairs) {
                        double mu = (double) b.mean()[2 * i] - b.mean()[2 * i + 1], var = 0;
                        pair(o, b.mean()[2 * i], b.mean()[2 * i + 1]);
                        if (b.variance() != null) {
                            var = b.variance()[2 * i] + b.variance()[2 * i + 1] - 2 * b.pairCovariance()[i];
                            o.put("margin_var", var);
                        }
                        o.put("p_chosen", Logistic.sigmoid(BayesianRewardModel.probitLogit(mu, var)));
                        continue;
                    }
                    o.put("reward", b.mean()[i]);
                    if (b.variance() == null) continue;
                    double var = b.variance()[i];
                    o.put("var", var).put("std", Math.sqrt(var));
                    if (spec.penalized() && !spec.penalty().relative()) o.put("penalized", spec.penalized(b.mean()[i], var));
                }
            };
            if (relativeBy == null) write(output, input, scorer.encoder(), spec.batchSize(), pairs, keep, compute);
            else relative(scorer, input, output, spec, keep, relativeBy, compute);
        }
    }

    /**
     * The options brm score and brm spark-score share, checked: --model, --adapter (its posterior unless
     * --no-uncertainty), --init-head, --threads (default threads), --batch-size, the text rules, --k and --penalty.
     */
    static ScoreSpec spec(CommandLine line, int threads) {
        Path adapter = Args.path(line, "adapter");
        boolean posterior = adapter != null && !line.hasOption("no-uncertainty") && Posterior.exists(adapter);
        if (line.hasOption("k") && !posterior)
            throw new UsageException("--k and --relative-by need an adapter with a posterior (brm laplace) and no --no-uncertainty");
        double k = line.hasOption("k") ? Args.number(line, "k", 0, 0, false) : Double.NaN;
        return new ScoreSpec(line.getOptionValue("model"), adapter == null ? null : adapter.toString(), posterior,
                k, BayesianRewardModel.Penalty.parse(line.getOptionValue("penalty", "std")), Args.positiveInt(line, "batch-size", 16),
                Args.positiveInt(line, "threads", threads), Args.backend(line), line.getOptionValue("template"), line.hasOption("append-eos"),
                Args.positiveInt(line, "max-length", 0), Args.truncation(line), Args.optionalLong(line, "init-head"));
    }

    /** The member adapters: DIR's seed-* folders (by seed), or a comma-separated list. */
    private static List<Path> members(String spec) {
        List<Path> members = new ArrayList<>();
        Path one = Path.of(spec);
        if (!spec.contains(",") && Files.isDirectory(one) && !Files.exists(one.resolve(PeftAdapter.CONFIG))) {
            try (var list = Files.list(one)) {
                list.filter(p -> p.getFileName().toString().matches("seed-\\d+") && Files.isDirectory(p))
                        .sorted(Comparator.comparingLong(p -> Long.parseLong(p.getFileName().toString().substring(5)))).forEach(members::add);
            } catch (IOException e) {
                throw new BrmException(one + ": cannot list the ensemble folder: " + e.getMessage());
            }
            if (members.isEmpty()) throw new BrmException(one + ": has no seed-* member adapters (brm ensemble train writes them)");
        } else {
            for (String m : spec.split(",")) if (!m.isBlank()) members.add(Path.of(m.strip()));
        }
        return members;
    }

    private static void ensemble(CommandLine line, ScoreSpec spec, Path input, Path output, List<String> keep) {
        List<Path> members = members(line.getOptionValue("ensemble"));
        boolean bayes = !line.hasOption("no-uncertainty") && members.stream().allMatch(Posterior::exists);
        List<Scorer> scorers = new ArrayList<>();
        try {
            for (Path m : members) scorers.add(Scorer.open(spec.withAdapter(m.toString(), bayes), spec.batchSize()));
            write(output, input, scorers.getFirst().encoder(), spec.batchSize(), false, keep, (batch, outputs) -> {
                double[][] rewards = new double[outputs.size()][members.size()], vars = new double[outputs.size()][members.size()];
                for (int m = 0; m < members.size(); m++) {
                    Predictive.Batch b = scorers.get(m).score(batch, false, null);
                    for (int i = 0; i < outputs.size(); i++) {
                        rewards[i][m] = b.mean()[i];
                        if (bayes) vars[i][m] = b.variance()[i];
                    }
                }
                for (int i = 0; i < outputs.size(); i++) {
                    ObjectNode o = outputs.get(i).put("reward", Arrays.stream(rewards[i]).average().orElseThrow());
                    o.set("rewards", Jsonl.JSON.valueToTree(rewards[i]));
                    if (bayes) o.set("vars", Jsonl.JSON.valueToTree(vars[i]));
                }
            });
        } finally {
            scorers.forEach(Scorer::close);
        }
    }

    /** A group's summed coefficients and size, for the mean of its rewards r̄. */
    private record Pool(double[][] sum, int[] count) {
        double[][] mean() {
            double[][] m = new double[sum.length][];
            for (int l = 0; l < m.length; l++) {
                m[l] = sum[l].clone();
                for (int i = 0; i < m[l].length; i++) m[l][i] /= count[0];
            }
            return m;
        }
    }

    /**
     * --relative-by: one pass of the model writes the lines to a temporary file and each line's
     * coefficients (float32) to another while summing them per group; a second pass, without the model,
     * adds var_rel and std_rel (and a relative penalty) from the group means.
     */
    private static void relative(Scorer scorer, Path input, Path output, ScoreSpec spec, List<String> keep, String field, Batches.Compute compute) {
        scorer.predictive().retainCoefficients();
        Map<String, Pool> pools = new HashMap<>();
        Path lines = null, coefficients = null;
        try {
            lines = Files.createTempFile("brm-score-", ".jsonl");
            coefficients = Files.createTempFile("brm-score-", ".coefficients");
            int[] shape = null;
            try (Jsonl.Reader reader = Jsonl.Reader.open(input); OutputStream out = Files.newOutputStream(lines);
                 OutputStream c = new BufferedOutputStream(Files.newOutputStream(coefficients), 1 << 20)) {
                int[][] shapeOut = new int[1][];
                ByteBuffer[] record = new ByteBuffer[1];
                Batches.run("score", reader, scorer.encoder(), spec.batchSize(), keep, out, (batch, outputs) -> {
                    compute.fill(batch, outputs);
                    for (int i = 0; i < outputs.size(); i++) {
                        double[][] x = scorer.predictive().coefficients(i);
                        Pool p = pools.computeIfAbsent(groupOf(outputs.get(i), field, input), g -> new Pool(zeros(x), new int[1]));
                        if (shapeOut[0] == null) {
                            shapeOut[0] = Arrays.stream(x).mapToInt(v -> v.length).toArray();
                            record[0] = ByteBuffer.allocate(Float.BYTES * Arrays.stream(shapeOut[0]).sum()).order(ByteOrder.LITTLE_ENDIAN);
                        }
                        FloatBuffer floats = record[0].clear().asFloatBuffer();
                        for (int l = 0; l < x.length; l++)
                            for (int j = 0; j < x[l].length; j++) {
                                p.sum[l][j] += x[l][j];
                                floats.put((float) x[l][j]);
                            }
                        write(c, record[0].array());
                        p.count[0]++;
                    }
                });
                shape = shapeOut[0];
            }
            Map<String, double[][]> means = new HashMap<>();
            pools.forEach((g, p) -> means.put(g, p.mean()));
            int[] dims = shape;
            try (Jsonl.Reader reader = Jsonl.Reader.open(lines);
                 InputStream c = new BufferedInputStream(Files.newInputStream(coefficients), 1 << 20)) {
                AtomicFiles.write(output, out -> {
                    byte[] bytes = dims == null ? null : new byte[Float.BYTES * Arrays.stream(dims).sum()];
                    for (Jsonl.Line l; (l = reader.next()) != null; ) {
                        ObjectNode o = l.value();
                        if (c.readNBytes(bytes, 0, bytes.length) != bytes.length) throw new IOException("temporary coefficient file is short");
                        FloatBuffer floats = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
                        double[][] x = new double[dims.length][];
                        for (int j = 0; j < dims.length; j++) {
                            x[j] = new double[dims[j]];
                            for (int i = 0; i < dims[j]; i++) x[j][i] = floats.get();
                        }
                        double rel = scorer.predictive().relativeVariance(x, means.get(groupOf(o, field)));
                        o.put("var_rel", rel).put("std_rel", Math.sqrt(rel));
                        if (spec.penalized() && spec.penalty().relative()) o.put("penalized", spec.penalized(o.get("reward").floatValue(), rel));
                        Jsonl.writeLine(out, o);
                    }
                });
            }
        } catch (IOException e) {
            throw new BrmException(input + ": " + e.getMessage());
        } finally {
            for (Path p : new Path[] {lines, coefficients})
                if (p != null) try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // a temporary file; the result is already written or the error already reported
                }
        }
    }

    private static void write(OutputStream out, byte[] bytes) {
        try {
            out.write(bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static double[][] zeros(double[][] like) {
        double[][] z = new double[like.length][];
        for (int l = 0; l < z.length; l++) z[l] = new double[like[l].length];
        return z;
    }

    private static String groupOf(ObjectNode o, String field) {
        return o.get(field).toString();
    }

    private static String groupOf(ObjectNode o, String field, Path input) {
        if (!o.has(field)) throw new BrmException(input + ": line with id " + o.get("id") + " has no \"" + field + "\" (--relative-by)");
        return groupOf(o, field);
    }

    private static void write(Path output, Path input, LineEncoder encoder, int batchSize, boolean pairs, List<String> keep, Batches.Compute compute) {
        try (Jsonl.Reader reader = Jsonl.Reader.open(input)) {
            AtomicFiles.write(output, out -> {
                if (pairs) Batches.runPairs("score", reader, encoder, batchSize, keep, out, compute);
                else Batches.run("score", reader, encoder, batchSize, keep, out, compute);
            });
        }
    }

    private static ObjectNode pair(ObjectNode o, float chosen, float rejected) {
        return o.put("reward_chosen", chosen).put("reward_rejected", rejected).put("margin", (double) chosen - rejected);
    }
}
