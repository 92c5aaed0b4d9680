package brm.cli;

import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.reward.SentenceEncoder;
import com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;


/** brm embed: one pooled (optionally L2-normalised) sentence embedding per input line. */
final class EmbedCommand implements Command {
    @Override
    public String name() {
        return "embed";
    }

    @Override
    public String summary() {
        return "sentence embeddings of JSONL lines: {\"id\", \"embedding\"} per line (pooled, optionally normalised)";
    }

    @Override
    public String details() {
        return "Text lines need only \"prompt\" (\"response\" is appended when present). Pooling follows config.json's\n"
                + "\"pooling\" (mean or cls) for encoders and the last token for decoders; normalisation follows its\n"
                + "\"normalize_embeddings\" unless --normalize or --no-normalize is given.";
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, false);
        o.addOption(Args.flag("normalize", "L2-normalise every embedding"));
        o.addOption(Args.flag("no-normalize", "write the pooled vectors as they are"));
        Args.addIo(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        if (line.hasOption("normalize") && line.hasOption("no-normalize"))
            throw new UsageException("--normalize and --no-normalize exclude each other");
        ModelSession session = ModelSession.open(line);
        boolean normalize = line.hasOption("normalize")
                || (!line.hasOption("no-normalize") && session.config().normalizeEmbeddings());
        int batchSize = Args.positiveInt(line, "batch-size", 16);
        var encoder = session.encoder(false);
        try (SentenceEncoder model = SentenceEncoder.open(session.modelDir(), session.adapter(line), Args.threads(line),
                Math.multiplyExact(batchSize, session.rules().maxLength()));
             Jsonl.Reader reader = Jsonl.Reader.open(Args.path(line, "input"))) {
            AtomicFiles.write(Args.path(line, "output"), out -> Batches.run("embed", reader, encoder, batchSize, out, (batch, outputs) -> {
                float[][] embeddings = model.embed(batch, normalize);
                for (int i = 0; i < embeddings.length; i++) {
                    ArrayNode e = outputs.get(i).putArray("embedding");
                    for (float v : embeddings[i]) e.add(v);
                }
            }));
        }
    }
}
