package brm.cli;

import brm.batch.PreferencePairs.Pair;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.reward.PreferenceMetrics;
import brm.reward.RewardModel;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
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
                orientations. --output writes {"pairs", "accuracy", "nll", "ece"} as JSON. --batch-size counts pairs.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, true);
        o.addOption(Args.required("data", "PAIRS.jsonl", "preference pairs"));
        o.addOption(Args.value("output", "METRICS.json", "also write the metrics as JSON (atomically; - for standard output)"));
        Args.addTextRules(o);
        Args.addPairOptions(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        int batchSize = Args.positiveInt(line, "batch-size", 16);
        Long initHead = Args.optionalLong(line, "init-head");
        var options = new RewardModel.Options(Args.threads(line), Math.multiplyExact(2 * batchSize, session.rules().maxLength()),
                initHead == null ? OptionalLong.empty() : OptionalLong.of(initHead));
        List<Pair> pairs = Args.readPairs(line, "data", session, false);
        float[] chosen = new float[pairs.size()], rejected = new float[pairs.size()];
        Progress progress = new Progress("eval-prefs", "pairs");
        long tokens = 0;
        try (RewardModel model = RewardModel.open(session.modelDir(), session.adapter(line), options)) {
            for (int from = 0; from < pairs.size(); from += batchSize) {
                List<int[]> batch = new ArrayList<>();
                for (Pair p : pairs.subList(from, Math.min(pairs.size(), from + batchSize))) {
                    batch.add(p.chosen());
                    batch.add(p.rejected());
                    tokens += p.tokens();
                }
                float[] r = model.score(batch);
                for (int i = 0; i < r.length / 2; i++) {
                    chosen[from + i] = r[2 * i];
                    rejected[from + i] = r[2 * i + 1];
                }
                progress.update(from + r.length / 2, tokens);
            }
            progress.finish(pairs.size(), tokens);
        }
        PreferenceMetrics m = PreferenceMetrics.of(chosen, rejected);
        System.out.printf("pairs %d  accuracy %.4f  nll %.4f  ece %.4f%n", m.pairs(), m.accuracy(), m.nll(), m.ece());
        Path output = Args.path(line, "output");
        if (output != null) {
            ObjectNode json = Jsonl.JSON.createObjectNode().put("pairs", m.pairs()).put("accuracy", m.accuracy())
                    .put("nll", m.nll()).put("ece", m.ece());
            AtomicFiles.write(output, out -> out.write((json.toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8)));
        }
    }
}
