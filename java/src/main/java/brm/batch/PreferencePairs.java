package brm.batch;

import brm.BrmException;
import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A preference data set read whole: one {@link Pair} per JSONL line, in file order, each line
 * encoded by {@link LineEncoder#encodePair} ({"prompt", "chosen", "rejected"} or
 * {"chosen_ids", "rejected_ids"}), with an optional per-pair {@code "margin"} (a finite number).
 */
public final class PreferencePairs {
    private PreferencePairs() {}

    /** One pair: token ids of both sides, its margin (0 when margins are not read), and its line. */
    public record Pair(int line, int[] chosen, int[] rejected, float margin) {
        public int tokens() {
            return chosen.length + rejected.length;
        }
    }

    /** The pairs of a file, and the lines skipped because both sides became the same token sequence. */
    public record Read(List<Pair> pairs, List<Integer> skippedLines) {}

    /**
     * Reads every line of file. With {@code margins}, each line must carry a numeric "margin";
     * without, a "margin" field is ignored. A pair whose sides encode to the same ids (unknown
     * characters, truncation) is an error, or with {@code skipIdentical} is skipped and its line
     * listed. A file with no usable pair is an error.
     */
    public static Read read(Path file, LineEncoder encoder, boolean margins, boolean skipIdentical) {
        List<Pair> pairs = new ArrayList<>();
        List<Integer> skipped = new ArrayList<>();
        try (Jsonl.Reader reader = Jsonl.Reader.open(file)) {
            for (Jsonl.Line l = reader.next(); l != null; l = reader.next()) {
                int[][] ids = encoder.encodePair(l, reader.name(), !skipIdentical);
                if (ids == null) skipped.add(l.number());
                else pairs.add(new Pair(l.number(), ids[0], ids[1], margins ? margin(l, reader.name()) : 0f));
            }
        }
        if (pairs.isEmpty()) throw new BrmException(file + ": no usable preference pairs" + (skipped.isEmpty() ? "" : " (" + skipped.size() + " skipped as identical)"));
        return new Read(List.copyOf(pairs), List.copyOf(skipped));
    }

    /** The sequences of pairs for one packed batch: chosen, rejected, chosen, rejected, ... */
    public static List<int[]> sequences(List<Pair> pairs) {
        List<int[]> seqs = new ArrayList<>(2 * pairs.size());
        for (Pair p : pairs) {
            seqs.add(p.chosen());
            seqs.add(p.rejected());
        }
        return seqs;
    }

    private static float margin(Jsonl.Line l, String source) {
        JsonNode m = l.value().get("margin");
        String where = source + ":" + l.number();
        if (m == null || m.isNull()) throw new BrmException(where + ": no \"margin\" field (--margin reads one per pair)");
        if (!m.isNumber() || !Double.isFinite(m.asDouble())) throw new BrmException(where + ": \"margin\" must be a finite number, got " + m);
        return (float) m.asDouble();
    }
}
