package brm.tokenize;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-pair encoding by merge rank, as the Hugging Face BPE model does it.
 *
 * A word starts as one symbol per char (with continuing_subword_prefix on all but the first and
 * end_of_word_suffix on the last; a char missing from the vocab becomes its {@code <0xNN>} byte
 * tokens under byte_fallback, else the unk token, consecutive unks fused under fuse_unk, else
 * nothing). Then, repeatedly, the adjacent pair (a, b) with the lowest merge rank, leftmost
 * first, is replaced by the token a + b (b without its prefix), until no adjacent pair has a
 * rank. A binary heap of (rank, position) keeps that O(n log n) per word; results are cached per
 * word (the cache never changes the ids).
 */
final class Bpe implements TokenModel {
    private static final int CACHE_CAPACITY = 100_000;
    private static final int CACHE_MAX_WORD = 256;

    private final Vocab vocab;
    /** (left id << 32 | right id) → (rank << 32 | merged id). */
    private final LongLongMap merges;
    private final String unkToken;
    private final int unkId;
    private final String continuingSubwordPrefix;
    private final String endOfWordSuffix;
    private final boolean fuseUnk;
    /** byte → id of its {@code <0xNN>} token (-1 if absent), or null without byte_fallback. */
    private final int[] byteFallbackIds;
    private final boolean ignoreMerges;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /** merges: pairs of tokens, best (rank 0) first; a repeated pair keeps its last rank. */
    Bpe(Map<String, Integer> vocab, List<String[]> merges, String unkToken, String continuingSubwordPrefix,
        String endOfWordSuffix, boolean fuseUnk, boolean byteFallback, boolean ignoreMerges) {
        this.vocab = Vocab.of(vocab);
        this.unkToken = unkToken;
        this.unkId = unkToken == null ? -1 : this.vocab.require(unkToken, "unk_token");
        this.continuingSubwordPrefix = continuingSubwordPrefix;
        this.endOfWordSuffix = endOfWordSuffix;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        int prefixLength = continuingSubwordPrefix == null ? 0 : continuingSubwordPrefix.length();
        this.merges = new LongLongMap(merges.size());
        for (int rank = 0; rank < merges.size(); rank++) {
            String left = merges.get(rank)[0], right = merges.get(rank)[1];
            if (right.length() < prefixLength)
                throw new IllegalArgumentException("merge '" + left + " " + right + "' is shorter than its prefix");
            int merged = this.vocab.require(left + right.substring(prefixLength),
                    "merge result of '" + left + " " + right + "'");
            this.merges.put(pair(this.vocab.require(left, "merge token"), this.vocab.require(right, "merge token")),
                    (long) rank << 32 | merged);
        }
        if (byteFallback) {
            byteFallbackIds = new int[256];
            for (int b = 0; b < 256; b++) byteFallbackIds[b] = vocab.getOrDefault(String.format("<0x%02X>", b), -1);
        } else {
            byteFallbackIds = null;
        }
    }

    private static long pair(int left, int right) {
        return (long) left << 32 | (right & 0xFFFFFFFFL);
    }

    @Override
    public void tokenize(String word, IntList out) {
        if (ignoreMerges) {
            Integer whole = vocab.ids().get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        int[] ids = cache.get(word);
        if (ids == null) {
            ids = merge(symbols(word));
            if (word.length() < CACHE_MAX_WORD && cache.size() < CACHE_CAPACITY) cache.put(word, ids);
        }
        out.addAll(ids);
    }

    /** word → its initial symbols: one id per char, or its byte tokens, or unk. */
    private IntList symbols(String word) {
        IntList symbols = new IntList();
        boolean pendingUnk = false;
        for (int i = 0; i < word.length(); ) {
            int next = word.offsetByCodePoints(i, 1);
            String piece = word.substring(i, next);
            if (i > 0 && continuingSubwordPrefix != null) piece = continuingSubwordPrefix + piece;
            if (next == word.length() && endOfWordSuffix != null) piece = piece + endOfWordSuffix;
            i = next;
            Integer id = vocab.ids().get(piece);
            if (id != null) {
                if (pendingUnk) symbols.add(unkId);
                pendingUnk = false;
                symbols.add(id);
                continue;
            }
            if (byteFallbackIds != null && addBytes(piece, symbols)) continue;
            if (unkId >= 0) {
                if (pendingUnk && !fuseUnk) symbols.add(unkId);
                pendingUnk = true;
            }
        }
        if (pendingUnk) symbols.add(unkId);
        return symbols;
    }

    /** Appends piece's byte tokens if the vocab has all of them; returns whether it did. */
    private boolean addBytes(String piece, IntList symbols) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        for (byte b : bytes) if (byteFallbackIds[b & 0xFF] < 0) return false;
        for (byte b : bytes) symbols.add(byteFallbackIds[b & 0xFF]);
        return true;
    }

    /** symbols (n ids) → merged ids (≤ n), lowest rank first, leftmost among equal ranks. */
    private int[] merge(IntList symbols) {
        int n = symbols.size();
        int[] ids = symbols.toArray();
        int[] prev = new int[n], next = new int[n];
        boolean[] removed = new boolean[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongHeap queue = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            long merge = merges.get(pair(ids[i], ids[i + 1]));
            if (merge >= 0) queue.push((merge >>> 32) << 32 | i);
        }
        while (queue.size() > 0) {
            long top = queue.pop();
            int rank = (int) (top >>> 32), pos = (int) top;
            if (removed[pos] || next[pos] < 0) continue;
            int right = next[pos];
            long merge = merges.get(pair(ids[pos], ids[right]));
            if (merge < 0 || (int) (merge >>> 32) != rank) continue; // stale: the pair changed since
            ids[pos] = (int) merge;
            removed[right] = true;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) {
                long left = merges.get(pair(ids[prev[pos]], ids[pos]));
                if (left >= 0) queue.push((left >>> 32) << 32 | prev[pos]);
            }
            if (next[pos] >= 0) {
                long after = merges.get(pair(ids[pos], ids[next[pos]]));
                if (after >= 0) queue.push((after >>> 32) << 32 | pos);
            }
        }
        int kept = 0;
        for (int i = 0; i < n; i++) if (!removed[i]) ids[kept++] = ids[i];
        return Arrays.copyOf(ids, kept);
    }

    @Override
    public Map<String, Integer> vocab() {
        return vocab.ids();
    }

    @Override
    public String token(int id) {
        return vocab.token(id);
    }

    @Override
    public String unkToken() {
        return unkToken;
    }

    /** A binary min-heap of longs: (rank << 32 | position), so ties go to the leftmost pair. */
    private static final class LongHeap {
        private long[] heap;
        private int size;

        LongHeap(int capacity) {
            heap = new long[Math.max(capacity, 4)];
        }

        int size() {
            return size;
        }

        void push(long value) {
            if (size == heap.length) heap = Arrays.copyOf(heap, size * 2);
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (heap[parent] <= value) break;
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = value;
        }

        long pop() {
            long top = heap[0];
            long last = heap[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) break;
                if (child + 1 < size && heap[child + 1] < heap[child]) child++;
                if (heap[child] >= last) break;
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
            return top;
        }
    }
}
