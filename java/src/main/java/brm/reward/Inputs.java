package brm.reward;

import brm.BrmException;
import brm.backbone.ModelConfig;

import java.nio.file.Path;
import java.util.List;

/** Checks token sequences against a model before they reach the backend. */
final class Inputs {
    private Inputs() {}

    /** Sequence {@code index} must be non-empty, at most max_position_embeddings long, with ids in the vocabulary. */
    static void check(ModelConfig config, Path dir, int index, int[] ids) {
        if (ids.length == 0) throw new BrmException("sequence " + index + " is empty");
        if (ids.length > config.maxPositionEmbeddings())
            throw new BrmException("sequence " + index + " has " + ids.length + " tokens, more than max_position_embeddings "
                    + config.maxPositionEmbeddings() + " of " + dir.resolve(ModelConfig.FILE));
        for (int t = 0; t < ids.length; t++)
            if (ids[t] < 0 || ids[t] >= config.vocabSize())
                throw new BrmException("sequence " + index + ": token id " + ids[t] + " at position " + t
                        + " is outside the vocabulary (vocab_size " + config.vocabSize() + " of " + dir.resolve(ModelConfig.FILE) + ")");
    }

    /** Receives one packed batch: the index of its first sequence and its sequences. */
    @FunctionalInterface
    interface BatchBody {
        void accept(int first, List<int[]> batch);
    }

    /**
     * Checks every sequence, then hands them on in order as consecutive batches of at most maxTokens
     * tokens (a longer sequence goes alone).
     */
    static void batches(ModelConfig config, Path dir, List<int[]> sequences, int maxTokens, BatchBody body) {
        for (int i = 0; i < sequences.size(); i++) check(config, dir, i, sequences.get(i));
        int first = 0;
        while (first < sequences.size()) {
            int end = first, tokens = 0;
            while (end < sequences.size() && (end == first || tokens + sequences.get(end).length <= maxTokens))
                tokens += sequences.get(end++).length;
            body.accept(first, sequences.subList(first, end));
            first = end;
        }
    }

    /** The ids of all sequences concatenated in order: the rows of a packed batch. */
    static int[] concat(List<int[]> sequences) {
        int[] ids = new int[sequences.stream().mapToInt(s -> s.length).sum()];
        int at = 0;
        for (int[] s : sequences) {
            System.arraycopy(s, 0, ids, at, s.length);
            at += s.length;
        }
        return ids;
    }
}
