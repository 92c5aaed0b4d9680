package brm.cli;

import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.reward.RewardModel;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
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
            AtomicFiles.write(output, out -> Batches.run("score", reader, encoder, batchSize, out, (batch, outputs) -> {
                float[] rewards = model.score(batch);
                for (int i = 0; i < rewards.length; i++) outputs.get(i).put("reward", rewards[i]);
            }));
        }
    }
}
