package brm.cli;

import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.reward.RewardModel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/** brm score: one reward per input line. */
final class ScoreCommand implements Command {
    @Override
    public String name() {
        return "score";
    }

    @Override
    public String summary() {
        return "score JSONL lines with a reward model (+ LoRA adapter): {\"id\", \"reward\"} per line";
    }

    @Override
    public String details() {
        return "Each output line is {\"id\": the input's id (its line number when it has none), \"reward\": float}.";
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, true);
        Args.addIo(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        Path input = Args.path(line, "input"), output = Args.path(line, "output");
        int batchSize = Args.positiveInt(line, "batch-size", 16);
        Long initHead = Args.optionalLong(line, "init-head");
        var options = new RewardModel.Options(Args.threads(line), Math.multiplyExact(batchSize, session.rules().maxLength()),
                initHead == null ? OptionalLong.empty() : OptionalLong.of(initHead));
        try (RewardModel model = RewardModel.open(session.modelDir(), session.adapter(line), options);
             Jsonl.Reader reader = Jsonl.Reader.open(input)) {
            var encoder = session.encoder(true);
            Progress progress = new Progress("score");
            AtomicFiles.write(output, out -> {
                List<JsonNode> ids = new ArrayList<>(batchSize);
                List<int[]> batch = new ArrayList<>(batchSize);
                long lines = 0, tokens = 0;
                for (Jsonl.Line l = reader.next(); ; l = reader.next()) {
                    if (l != null) {
                        ids.add(idOf(l));
                        batch.add(encoder.encode(l, reader.name()));
                    }
                    if (batch.size() == batchSize || (l == null && !batch.isEmpty())) {
                        float[] rewards = model.score(batch);
                        for (int i = 0; i < rewards.length; i++) {
                            ObjectNode o = Jsonl.JSON.createObjectNode();
                            o.set("id", ids.get(i));
                            o.put("reward", rewards[i]);
                            Jsonl.writeLine(out, o);
                            tokens += batch.get(i).length;
                        }
                        lines += rewards.length;
                        progress.update(lines, tokens);
                        ids.clear();
                        batch.clear();
                    }
                    if (l == null) break;
                }
                progress.finish(lines, tokens);
            });
        }
    }

    static JsonNode idOf(Jsonl.Line l) {
        JsonNode id = l.value().get("id");
        return id != null ? id : Jsonl.JSON.getNodeFactory().numberNode(l.number());
    }
}
