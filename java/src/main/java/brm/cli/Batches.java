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

    /** Fills outputs (each already holding its line's "id") with the results for the batch's sequences. */
    @FunctionalInterface
    interface Compute {
        void fill(List<int[]> batch, List<ObjectNode> outputs);
    }

    /** One sequence per line ({@link LineEncoder#encode}), batchSize lines per compute. */
    static void run(String what, Jsonl.Reader reader, LineEncoder encoder, int batchSize, OutputStream out, Compute compute)
            throws IOException {
        run(what, reader, encoder, batchSize, List.of(), out, compute);
    }

    /** {@link #run(String, Jsonl.Reader, LineEncoder, int, OutputStream, Compute)}, each output also carrying the input's {@code keep} fields (where present). */
    static void run(String what, Jsonl.Reader reader, LineEncoder encoder, int batchSize, List<String> keep, OutputStream out, Compute compute)
            throws IOException {
        loop(what, reader, l -> new int[][] {encoder.encode(l, reader.name())}, batchSize, keep, out, compute);
    }

    /**
     * Pair lines ({@link LineEncoder#encodePair}), batchSize pairs per compute: the batch holds chosen,
     * rejected, chosen, ... (2 per output line).
     */
    static void runPairs(String what, Jsonl.Reader reader, LineEncoder encoder, int batchSize, List<String> keep, OutputStream out, Compute compute)
            throws IOException {
        loop(what, reader, l -> encoder.encodePair(l, reader.name(), true), batchSize, keep, out, compute);
    }

    @FunctionalInterface
    private interface Encode {
        int[][] sequences(Jsonl.Line line);
    }

    private static void loop(String what, Jsonl.Reader reader, Encode encode, int batchSize, List<String> keep, OutputStream out, Compute compute)
            throws IOException {
        Progress progress = new Progress(what);
        List<ObjectNode> outputs = new ArrayList<>(batchSize);
        List<int[]> batch = new ArrayList<>(batchSize);
        long lines = 0, tokens = 0;
        for (Jsonl.Line l = reader.next(); ; l = reader.next()) {
            if (l != null) {
                ObjectNode o = Jsonl.JSON.createObjectNode().set("id", idOf(l));
                for (String field : keep) if (l.value().has(field)) o.set(field, l.value().get(field));
                outputs.add(o);
                for (int[] seq : encode.sequences(l)) {
                    batch.add(seq);
                    tokens += seq.length;
                }
            }
            if (outputs.size() == batchSize || (l == null && !outputs.isEmpty())) {
                compute.fill(batch, outputs);
                for (ObjectNode o : outputs) Jsonl.writeLine(out, o);
                lines += outputs.size();
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
