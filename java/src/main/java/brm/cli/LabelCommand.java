package brm.cli;

import brm.BrmException;
import brm.bon.Labeler;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.reward.RewardModel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;

/** brm label: preference pairs of policy samples labelled by a gold reward through Bradley–Terry, with label noise. */
final class LabelCommand implements Command {
    @Override
    public String name() {
        return "label";
    }

    @Override
    public String summary() {
        return "label pairs of samples of the same prompt by a gold reward (Bradley-Terry with beta, label noise): TRL pair lines";
    }

    @Override
    public String details() {
        return """
                Sample lines: {"prompt_id", "prompt", "response"[, "gold"]} (what brm generate writes). The gold reward is the line's
                "gold", or with --gold DIR the reward of that model (its text rules below). Per prompt, --pairs distinct pairs of its
                samples are drawn; a is preferred with probability sigmoid(beta·(g_a - g_b)), then the label is flipped with
                probability --noise; seeded by --seed. Output lines: {"prompt_id", "prompt", "chosen", "rejected", "gold_chosen",
                "gold_rejected", "flipped"}, ready for brm train.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("input", "SAMPLES.jsonl", "policy samples"));
        o.addOption(Args.required("output", "PAIRS.jsonl", "labelled pairs (written atomically)"));
        o.addOption(Args.required("pairs", "K", "pairs per prompt"));
        o.addOption(Args.value("beta", "B", "Bradley-Terry inverse temperature on the gold rewards (default 1)"));
        o.addOption(Args.value("noise", "P", "probability of flipping a label (default 0)"));
        o.addOption(Args.value("seed", "S", "seed of the pairs and labels (default 0)"));
        o.addOption(Args.value("gold", "DIR", "gold reward model directory (else each line's \"gold\")"));
        o.addOption(Args.value("adapter", "ADIR", "the gold model's PEFT adapter"));
        o.addOption(Args.value("init-head", "SEED", "a fresh score head for a gold model without one (as brm score)"));
        Args.addCompute(o);
        o.addOption(Args.value("batch-size", "B", "sequences per forward pass of the gold model (default 16)"));
        Args.addTextRules(o);
        return o;
    }

    private record Sample(JsonNode line, String promptId, String prompt, String response) {}

    @Override
    public void run(CommandLine line) {
        Path input = Args.path(line, "input");
        int pairs = Args.positiveInt(line, "pairs", 1);
        double beta = Args.number(line, "beta", 1, 0, false), noise = Args.number(line, "noise", 0, 0, false);
        if (noise > 1) throw new UsageException("--noise must be at most 1, got " + noise);
        long seed = line.hasOption("seed") ? Args.optionalLong(line, "seed") : 0;
        List<Sample> samples = new ArrayList<>();
        List<Jsonl.Line> lines = new ArrayList<>();
        try (Jsonl.Reader reader = Jsonl.Reader.open(input)) {
            for (Jsonl.Line l = reader.next(); l != null; l = reader.next()) {
                String where = input + ":" + l.number();
                JsonNode v = l.value();
                for (String f : List.of("prompt_id", "prompt", "response"))
                    if (!v.hasNonNull(f)) throw new BrmException(where + ": missing field \"" + f + "\"");
                if (!line.hasOption("gold") && !(v.path("gold").isNumber() && Double.isFinite(v.path("gold").asDouble())))
                    throw new BrmException(where + ": no numeric \"gold\" (give --gold DIR for a gold reward model)");
                samples.add(new Sample(v, v.get("prompt_id").asText(), v.get("prompt").asText(), v.get("response").asText()));
                lines.add(l);
            }
        }
        if (samples.isEmpty()) throw new BrmException(input + ": no samples");
        double[] gold = line.hasOption("gold") ? goldRewards(line, input, lines) : samples.stream().mapToDouble(s -> s.line.get("gold").asDouble()).toArray();
        Map<String, List<Labeler.Sample>> pools = new LinkedHashMap<>();
        for (int i = 0; i < samples.size(); i++) pools.computeIfAbsent(samples.get(i).promptId, k -> new ArrayList<>()).add(new Labeler.Sample(i, gold[i]));
        Random random = new Random(seed);
        StringBuilder out = new StringBuilder();
        int flipped = 0, total = 0;
        for (var pool : pools.entrySet())
            for (Labeler.Pair p : Labeler.label(pool.getKey(), pool.getValue(), pairs, beta, noise, random)) {
                Sample c = samples.get(p.chosen()), r = samples.get(p.rejected());
                ObjectNode o = Jsonl.JSON.createObjectNode();
                o.set("prompt_id", c.line.get("prompt_id"));
                o.put("prompt", c.prompt).put("chosen", c.response).put("rejected", r.response)
                        .put("gold_chosen", gold[p.chosen()]).put("gold_rejected", gold[p.rejected()]).put("flipped", p.flipped());
                out.append(o).append('\n');
                flipped += p.flipped() ? 1 : 0;
                total++;
            }
        String text = out.toString();
        AtomicFiles.write(Args.path(line, "output"), stream -> stream.write(text.getBytes(StandardCharsets.UTF_8)));
        System.err.printf("label: %d pairs from %d prompts (%d labels flipped by noise)%n", total, pools.size(), flipped);
    }

    /** The gold model's reward of each sample (prompt + response under the text rules). */
    private static double[] goldRewards(CommandLine line, Path input, List<Jsonl.Line> lines) {
        ModelSession session = ModelSession.open(line, "gold");
        var encoder = session.encoder(true);
        List<int[]> sequences = new ArrayList<>();
        for (Jsonl.Line l : lines) sequences.add(encoder.encode(l, input.toString()));
        int batch = Args.positiveInt(line, "batch-size", 16);
        try (RewardModel model = RewardModel.open(session.modelDir(), session.adapter(line),
                new RewardModel.Options(Args.threads(line), Math.multiplyExact(batch, session.rules().maxLength()),
                        line.hasOption("init-head") ? OptionalLong.of(Args.optionalLong(line, "init-head")) : OptionalLong.empty()))) {
            float[] r = model.score(sequences);
            double[] gold = new double[r.length];
            for (int i = 0; i < r.length; i++) gold[i] = r[i];
            return gold;
        }
    }
}
