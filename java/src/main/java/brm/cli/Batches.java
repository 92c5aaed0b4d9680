package brm.cli;

import brm.batch.LineEncoder;
import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;

/** The streaming loop of score and embed: encode lines, compute a batch at a time, write in input order. */
final class Batches {
    private Batches() {}

    /** Fills outputs.get(i) (already holding the line's "id") with the results for batch.get(i). */
    @FunctionalInterface
    interface Compute {
        void fill(List<int[]> batch, List<ObjectNode> outputs);
    }

    static void run(String what, Jsonl.Reader reader, LineEncoder encoder, int batchSize, OutputStream out, Compute compute)
            throws IOException {
        Progress progress = new Progress(what);
        List<ObjectNode> outputs = new ArrayList<>(batchSize);
        List<int[]> batch = new ArrayList<>(batchSize);
        long lines = 0, tokens = 0;
        for (Jsonl.Line l = reader.next(); ; l = reader.next()) {
            if (l != null) {
                outputs.add(Jsonl.JSON.createObjectNode().set("id", idOf(l)));
                batch.add(encoder.encode(l, reader.name()));
            }
            if (batch.size() == batchSize || (l == null && !batch.isEmpty())) {
                compute.fill(batch, outputs);
                for (int i = 0; i < batch.size(); i++) {
                    Jsonl.writeLine(out, outputs.get(i));
                    tokens += batch.get(i).length;
                }
                lines += batch.size();
                progress.update(lines, tokens);
                outputs.clear();
                batch.clear();
            }
            if (l == null) break;
        }
        progress.finish(lines, tokens);
    }

    /** The line's "id", or its line number when it has none. */
    static JsonNode idOf(Jsonl.Line l) {
        var id = l.value().get("id");
        return id != null ? id : Jsonl.JSON.getNodeFactory().numberNode(l.number());
    }
}
