package brm.cli;

import brm.io.AtomicFiles;
import brm.io.Jsonl;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

/** brm tokenize: the token ids brm score would feed the model, one line per input line. */
final class TokenizeCommand implements Command {
    @Override
    public String name() {
        return "tokenize";
    }

    @Override
    public String summary() {
        return "tokenize JSONL lines with the model's tokenizer and text rules: {\"id\", \"input_ids\"} per line";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("model", "DIR", "Hugging Face model directory (config.json, tokenizer.json)"));
        Args.addIo(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        var encoder = session.encoder(true);
        try (Jsonl.Reader reader = Jsonl.Reader.open(Args.path(line, "input"))) {
            AtomicFiles.write(Args.path(line, "output"), out -> Batches.run("tokenize", reader, encoder, 256, out, (batch, outputs) -> {
                for (int i = 0; i < batch.size(); i++) {
                    var array = outputs.get(i).putArray("input_ids");
                    for (int id : batch.get(i)) array.add(id);
                }
            }));
        }
    }
}
