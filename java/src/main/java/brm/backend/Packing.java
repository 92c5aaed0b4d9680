package brm.backend;

import java.util.List;

/**
 * The packed (varlen) layout of a batch: the tokens of all sequences concatenated as rows
 * [tokens, ·], sequence s at rows [starts[s], starts[s+1]) (cu_seqlens), so no row is padding.
 * Linear layers and element-wise ops treat the rows as independent; attention, positions and
 * pooling work per sequence.
 *
 * @param starts    seqs+1 row offsets, starts[0] = 0, strictly increasing (no empty sequence)
 * @param positions position of each row inside its sequence [tokens]
 */
public record Packing(int[] starts, int[] positions) {
    public static Packing of(List<int[]> sequences) {
        int[] starts = new int[sequences.size() + 1];
        for (int s = 0; s < sequences.size(); s++) {
            if (sequences.get(s).length == 0) throw new IllegalArgumentException("sequence " + s + " is empty");
            starts[s + 1] = Math.addExact(starts[s], sequences.get(s).length);
        }
        int[] positions = new int[starts[sequences.size()]];
        for (int s = 0; s < sequences.size(); s++)
            for (int r = starts[s]; r < starts[s + 1]; r++) positions[r] = r - starts[s];
        return new Packing(starts, positions);
    }

    public int seqs() {
        return starts.length - 1;
    }

    public int tokens() {
        return starts[starts.length - 1];
    }

    public int start(int seq) {
        return starts[seq];
    }

    public int length(int seq) {
        return starts[seq + 1] - starts[seq];
    }

    public int maxLength() {
        int max = 0;
        for (int s = 0; s < seqs(); s++) max = Math.max(max, length(s));
        return max;
    }
}
