package brm.cli;

import brm.BrmException;
import brm.bon.EmbeddingGold;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** brm gold: the default world's gold reward ({@link EmbeddingGold}) of generated samples. */
final class GoldCommand implements Command {
    @Override
    public String name() {
        return "gold";
    }

    @Override
    public String summary() {
        return "gold reward of samples from a sentence encoder: sentiment of the response plus its relevance to the prompt";
    }

    @Override
    public String details() {
        return """
                Input lines need "prompt" and "response" (brm generate's lines); each is written back in order,
                every field kept, with "gold", "gold_sentiment" and "gold_relevance" added (replaced where present).
                With e(t) the encoder's L2-normalised sentence embedding (pooling from its config.json; bge: CLS):
                  gold_sentiment = cos(e(response), e(positive)) - cos(e(response), e(negative))
                  gold_relevance = cos(e(response), e(prompt))
                  gold           = sentiment-weight * gold_sentiment + relevance-weight * gold_relevance
                Texts longer than the encoder's position limit are cut on the right. Each distinct prompt is
                embedded once.
                """ + "Default --positive: \"" + EmbeddingGold.POSITIVE + "\"\nDefault --negative: \"" + EmbeddingGold.NEGATIVE + "\"";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("encoder", "DIR", "sentence encoder directory (brm import onnx of bge-small-en-v1.5, for example)"));
        o.addOption(Args.required("input", "SAMPLES.jsonl", "samples: {\"prompt\", \"response\", ...} per line"));
        o.addOption(Args.required("output", "OUT.jsonl", "the samples with the gold fields added (written atomically; - for standard output)"));
        o.addOption(Args.value("positive", "TEXT", "description of the stories gold prefers (default: a happy, kind story)"));
        o.addOption(Args.value("negative", "TEXT", "description of the stories gold penalises (default: a sad, mean story)"));
        o.addOption(Args.value("sentiment-weight", "W", "weight of the sentiment term (default 1)"));
        o.addOption(Args.value("relevance-weight", "W", "weight of the relevance term (default 2)"));
        o.addOption(Args.value("batch-size", "B", "samples per embedding pass (default 32)"));
        Args.addCompute(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        Path encoderDir = Args.path(line, "encoder"), input = Args.path(line, "input");
        var defaults = EmbeddingGold.Settings.DEFAULT;
        var settings = new EmbeddingGold.Settings(line.getOptionValue("positive", defaults.positive()),
                line.getOptionValue("negative", defaults.negative()),
                Args.number(line, "sentiment-weight", defaults.sentimentWeight(), 0, false),
                Args.number(line, "relevance-weight", defaults.relevanceWeight(), 0, false));
        int batchSize = Args.positiveInt(line, "batch-size", 32);
        if (!Files.isDirectory(encoderDir)) throw new BrmException(encoderDir + ": no such encoder directory");
        try (Jsonl.Reader reader = Jsonl.Reader.open(input);
             EmbeddingGold gold = EmbeddingGold.open(encoderDir, settings, Args.threads(line), batchSize)) {
            AtomicFiles.write(Args.path(line, "output"), out -> write(reader, gold, batchSize, out));
        }
    }

    /** Streams the samples through the gold reward, batchSize lines at a time, in input order. */
    private static void write(Jsonl.Reader reader, EmbeddingGold gold, int batchSize, OutputStream out) throws IOException {
        Progress progress = new Progress("gold", "samples");
        List<Jsonl.Line> lines = new ArrayList<>(batchSize);
        List<EmbeddingGold.Sample> samples = new ArrayList<>(batchSize);
        long done = 0;
        for (Jsonl.Line l = reader.next(); ; l = reader.next()) {
            if (l != null) {
                String where = reader.name() + ":" + l.number();
                lines.add(l);
                samples.add(new EmbeddingGold.Sample(text(l.value(), "prompt", where), text(l.value(), "response", where), where));
            }
            if (lines.size() == batchSize || (l == null && !lines.isEmpty())) {
                EmbeddingGold.Gold[] g = gold.score(samples);
                for (int i = 0; i < g.length; i++)
                    Jsonl.writeLine(out, lines.get(i).value().put("gold", g[i].gold())
                            .put("gold_sentiment", g[i].sentiment()).put("gold_relevance", g[i].relevance()));
                done += g.length;
                progress.update(done, gold.tokens());
                lines.clear();
                samples.clear();
            }
            if (l == null) break;
        }
        if (done == 0) throw new BrmException(reader.name() + ": no samples");
        progress.finish(done, gold.tokens());
    }

    private static String text(JsonNode v, String field, String where) {
        JsonNode n = v.get(field);
        if (n == null || n.isNull()) throw new BrmException(where + ": missing field \"" + field + "\"");
        if (!n.isTextual()) throw new BrmException(where + ": \"" + field + "\" must be a string");
        return n.asText();
    }
}
