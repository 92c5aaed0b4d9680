package brm.cli;

import brm.batch.LineEncoder;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.laplace.BayesianRewardModel;
import brm.laplace.Posterior;
import brm.laplace.Predictive;
import brm.reward.RewardModel;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.OptionalLong;

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
                posterior only), "p_chosen" (σ(μ_Δ / sqrt(1 + π·var(Δ)/8)), σ(μ_Δ) without a posterior)}.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, true);
        Args.addIo(o);
        o.addOption(Args.flag("pairs", "score preference pairs instead of single responses"));
        o.addOption(Args.value("k", "K", "add \"penalized\" = μ - K·σ (or - K·σ²) (needs a posterior)"));
        o.addOption(Args.value("penalty", "std|var", "what --k multiplies (default std)"));
        o.addOption(Args.flag("no-uncertainty", "ignore the adapter's posterior: rewards only"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        Path input = Args.path(line, "input"), output = Args.path(line, "output"), adapterDir = Args.path(line, "adapter");
        int batchSize = Args.positiveInt(line, "batch-size", 16);
        boolean pairs = line.hasOption("pairs");
        Long initHead = Args.optionalLong(line, "init-head");
        OptionalLong head = initHead == null ? OptionalLong.empty() : OptionalLong.of(initHead);
        boolean uncertain = adapterDir != null && !line.hasOption("no-uncertainty") && Posterior.exists(adapterDir);
        if (line.hasOption("k") && !uncertain)
            throw new UsageException("--k needs an adapter with a posterior (brm laplace) and no --no-uncertainty");
        double k = Args.number(line, "k", 0, 0, false);
        BayesianRewardModel.Penalty penalty = BayesianRewardModel.Penalty.parse(line.getOptionValue("penalty", "std"));
        var encoder = session.encoder(true);
        int sequencesPerBatch = pairs ? 2 * batchSize : batchSize;
        if (uncertain) {
            try (var model = BayesianRewardModel.open(session.modelDir(), adapterDir, Args.threads(line), head);
                 Jsonl.Reader reader = Jsonl.Reader.open(input)) {
                Batches.Compute compute = (batch, outputs) -> {
                    Predictive.Batch b = model.score(batch, pairs);
                    if (pairs) {
                        for (int i = 0; i < outputs.size(); i++) {
                            double var = b.variance()[2 * i] + b.variance()[2 * i + 1] - 2 * b.pairCovariance()[i];
                            double mu = (double) b.mean()[2 * i] - b.mean()[2 * i + 1];
                            pair(outputs.get(i), b.mean()[2 * i], b.mean()[2 * i + 1]).put("margin_var", var)
                                    .put("p_chosen", sigmoid(BayesianRewardModel.probitLogit(mu, var)));
                        }
                    } else {
                        for (int i = 0; i < outputs.size(); i++) {
                            double var = b.variance()[i];
                            ObjectNode o = outputs.get(i).put("reward", b.mean()[i]).put("var", var).put("std", Math.sqrt(var));
                            if (line.hasOption("k")) o.put("penalized", penalty.apply(b.mean()[i], var, k));
                        }
                    }
                };
                write(output, reader, encoder, batchSize, pairs, compute);
            }
            return;
        }
        var options = new RewardModel.Options(Args.threads(line), Math.multiplyExact(sequencesPerBatch, session.rules().maxLength()), head);
        try (RewardModel model = RewardModel.open(session.modelDir(), session.adapter(line), options);
             Jsonl.Reader reader = Jsonl.Reader.open(input)) {
            write(output, reader, encoder, batchSize, pairs, (batch, outputs) -> {
                float[] rewards = model.score(batch);
                for (int i = 0; i < outputs.size(); i++) {
                    if (pairs) pair(outputs.get(i), rewards[2 * i], rewards[2 * i + 1]).put("p_chosen", sigmoid((double) rewards[2 * i] - rewards[2 * i + 1]));
                    else outputs.get(i).put("reward", rewards[i]);
                }
            });
        }
    }

    private static void write(Path output, Jsonl.Reader reader, LineEncoder encoder, int batchSize, boolean pairs, Batches.Compute compute) {
        AtomicFiles.write(output, out -> {
            if (pairs) Batches.runPairs("score", reader, encoder, batchSize, out, compute);
            else Batches.run("score", reader, encoder, batchSize, out, compute);
        });
    }

    private static ObjectNode pair(ObjectNode o, float chosen, float rejected) {
        return o.put("reward_chosen", chosen).put("reward_rejected", rejected).put("margin", (double) chosen - rejected);
    }

    private static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }
}
