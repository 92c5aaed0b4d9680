package brm.cli;

import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.reward.CausalLM;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.util.stream.IntStream;

/** brm logits: next-token logits of a decoder after each input line. */
final class LogitsCommand implements Command {
    @Override
    public String name() {
        return "logits";
    }

    @Override
    public String summary() {
        return "next-token logits of a causal LM after each line: {\"id\", \"top_ids\", \"top_logits\"} (or all with --full)";
    }

    @Override
    public String details() {
        return "Text lines need only \"prompt\" (\"response\" is appended when present); the template and eos rules of score apply.";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("model", "DIR", "Hugging Face decoder directory (GPT-NeoX or Llama) with an LM head or tied embeddings"));
        o.addOption(Args.value("adapter", "ADIR", "PEFT LoRA adapter directory"));
        Args.addCompute(o);
        o.addOption(Args.value("top-k", "K", "how many of the largest logits to write (default 10)"));
        o.addOption(Args.flag("full", "write the logits of the whole vocabulary instead of the top K"));
        Args.addIo(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        int topK = Math.min(Args.positiveInt(line, "top-k", 10), session.config().vocabSize());
        boolean full = line.hasOption("full");
        var encoder = session.encoder(false);
        try (CausalLM lm = CausalLM.open(session.modelDir(), session.adapter(line), Args.threads(line));
             Jsonl.Reader reader = Jsonl.Reader.open(Args.path(line, "input"))) {
            AtomicFiles.write(Args.path(line, "output"), out -> Batches.run("logits", reader, encoder, 1, out, (batch, outputs) -> {
                float[] logits = lm.lastLogits(batch.getFirst());
                ObjectNode o = outputs.getFirst();
                if (full) {
                    ArrayNode all = o.putArray("logits");
                    for (float v : logits) all.add(v);
                } else {
                    int[] top = IntStream.range(0, logits.length).boxed()
                            .sorted((a, b) -> Float.compare(logits[b], logits[a])).limit(topK).mapToInt(Integer::intValue).toArray();
                    ArrayNode topIds = o.putArray("top_ids"), topLogits = o.putArray("top_logits");
                    for (int id : top) {
                        topIds.add(id);
                        topLogits.add(logits[id]);
                    }
                }
            }));
        }
    }
}
