package brm.cli;

import brm.batch.PreferencePairs;
import brm.batch.PreferencePairs.Pair;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.laplace.BayesianRewardModel;
import brm.laplace.Posterior;
import brm.laplace.Predictive;
import brm.reward.PreferenceMetrics;
import brm.reward.RewardModel;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;

/** brm eval-prefs: accuracy, Bradley–Terry NLL and calibration of a reward model on preference pairs. */
final class EvalPrefsCommand implements Command {
    @Override
    public String name() {
        return "eval-prefs";
    }

    @Override
    public String summary() {
        return "evaluate a reward model on preference pairs: accuracy, Bradley-Terry NLL, expected calibration error";
    }

    @Override
    public String details() {
        return """
                Pair lines: {"prompt", "chosen", "rejected"[, "input"]} (each side is prompt + response under the text rules)
                or {"chosen_ids", "rejected_ids"}. With d = r(chosen) - r(rejected): accuracy = mean [d > 0] (ties 1/2),
                nll = mean -log sigmoid(d), ece over 10 equal-width bins of sigmoid(d) with each pair counted in both
                orientations. --output writes {"pairs", "accuracy", "nll", "ece"} as JSON. --batch-size counts pairs.
                With an adapter holding posterior.safetensors (brm laplace), the same metrics under the Laplace probit
                predictive P = sigmoid(μ_Δ / sqrt(1 + π·var(Δ)/8)) follow on a second line and under "laplace" in the JSON.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, true);
        o.addOption(Args.required("data", "PAIRS.jsonl", "preference pairs"));
        o.addOption(Args.value("output", "METRICS.json", "also write the metrics as JSON (atomically; - for standard output)"));
        Args.addTextRules(o);
        Args.addPairOptions(o);
        o.addOption(Args.flag("no-uncertainty", "ignore the adapter's posterior: MAP metrics only"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        int batchSize = Args.positiveInt(line, "batch-size", 16);
        Long initHead = Args.optionalLong(line, "init-head");
        OptionalLong head = initHead == null ? OptionalLong.empty() : OptionalLong.of(initHead);
        Path adapterDir = Args.path(line, "adapter");
        boolean laplace = adapterDir != null && !line.hasOption("no-uncertainty") && Posterior.exists(adapterDir);
        List<Pair> pairs = Args.readPairs(line, "data", session, false);
        double[] map = new double[pairs.size()], probit = laplace ? new double[pairs.size()] : null;
        Progress progress = new Progress("eval-prefs", "pairs");
        long tokens = 0;
        var options = new RewardModel.Options(Args.threads(line), Math.multiplyExact(2 * batchSize, session.rules().maxLength()), head);
        try (RewardModel model = laplace ? null : RewardModel.open(session.modelDir(), session.adapter(line), options);
             BayesianRewardModel bayes = laplace ? BayesianRewardModel.open(session.modelDir(), adapterDir, Args.threads(line), head) : null) {
            for (int from = 0; from < pairs.size(); from += batchSize) {
                List<Pair> slice = pairs.subList(from, Math.min(pairs.size(), from + batchSize));
                List<int[]> batch = PreferencePairs.sequences(slice);
                for (Pair p : slice) tokens += p.tokens();
                Predictive.Batch b = laplace ? bayes.score(batch, true) : null;
                float[] r = laplace ? b.mean() : model.score(batch);
                for (int i = 0; i < r.length / 2; i++) {
                    map[from + i] = (double) r[2 * i] - r[2 * i + 1];
                    if (laplace) probit[from + i] = BayesianRewardModel.probitLogit(map[from + i],
                            b.variance()[2 * i] + b.variance()[2 * i + 1] - 2 * b.pairCovariance()[i]);
                }
                progress.update(from + r.length / 2, tokens);
            }
            progress.finish(pairs.size(), tokens);
        }
        PreferenceMetrics m = PreferenceMetrics.ofLogits(map);
        ObjectNode json = Jsonl.JSON.createObjectNode().put("pairs", m.pairs()).put("accuracy", m.accuracy()).put("nll", m.nll()).put("ece", m.ece());
        System.out.printf("pairs %d  accuracy %.4f  nll %.4f  ece %.4f%s%n", m.pairs(), m.accuracy(), m.nll(), m.ece(), laplace ? "  (MAP)" : "");
        if (laplace) {
            PreferenceMetrics l = PreferenceMetrics.ofLogits(probit);
            System.out.printf("pairs %d  accuracy %.4f  nll %.4f  ece %.4f  (Laplace, probit)%n", l.pairs(), l.accuracy(), l.nll(), l.ece());
            json.putObject("laplace").put("accuracy", l.accuracy()).put("nll", l.nll()).put("ece", l.ece());
        }
        Path output = Args.path(line, "output");
        if (output != null) AtomicFiles.write(output, out -> out.write((json.toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8)));
    }
}
