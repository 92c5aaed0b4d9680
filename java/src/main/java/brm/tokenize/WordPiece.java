package brm.tokenize;

import java.util.Arrays;
import java.util.Map;

/**
 * BERT's WordPiece: greedy longest-match-first over a word. From the current start, take the
 * longest vocab entry (written with the "##" continuing prefix unless at the word's start); if no
 * prefix of the rest is in the vocab, or the word has more than max_input_chars_per_word chars,
 * the whole word becomes the unk token.
 *
 * The longest match is one walk down a char trie of the vocab (continuation tokens in a second
 * trie without their prefix) instead of HF's one hash lookup per candidate length.
 */
final class WordPiece implements TokenModel {
    private final Vocab vocab;
    private final String unkToken;
    private final int unkId;
    private final int maxInputCharsPerWord;
    /** Trie edges: (node << 16 | char) → child node. Node 0 roots word-initial tokens, node 1 continuations. */
    private final LongLongMap edges;
    /** node → token id ending there, or -1. */
    private final int[] nodeToken;

    WordPiece(Map<String, Integer> vocab, String unkToken, String continuingSubwordPrefix, int maxInputCharsPerWord) {
        this.vocab = Vocab.of(vocab);
        this.unkToken = unkToken;
        this.unkId = this.vocab.require(unkToken, "unk_token");
        this.maxInputCharsPerWord = maxInputCharsPerWord;
        LongLongMap edges = new LongLongMap(vocab.size() * 4);
        IntList nodeToken = new IntList();
        nodeToken.add(-1);
        nodeToken.add(-1);
        vocab.forEach((token, id) -> {
            insert(edges, nodeToken, 0, token, id);
            if (token.startsWith(continuingSubwordPrefix))
                insert(edges, nodeToken, 1, token.substring(continuingSubwordPrefix.length()), id);
        });
        this.edges = edges;
        this.nodeToken = nodeToken.toArray();
    }

    private static void insert(LongLongMap edges, IntList nodeToken, int root, String token, int id) {
        int node = root;
        for (int i = 0; i < token.length(); i++) {
            long edge = (long) node << 16 | token.charAt(i);
            long child = edges.get(edge);
            if (child < 0) {
                child = nodeToken.size();
                nodeToken.add(-1);
                edges.put(edge, child);
            }
            node = (int) child;
        }
        if (node != root) nodeToken.set(node, id);
    }

    @Override
    public void tokenize(String word, IntList out) {
        if (word.codePointCount(0, word.length()) > maxInputCharsPerWord) {
            out.add(unkId);
            return;
        }
        int[] pieces = new int[word.length()];
        int count = 0;
        for (int start = 0; start < word.length(); ) {
            int node = start == 0 ? 0 : 1, bestEnd = -1, bestId = -1;
            for (int i = start; i < word.length(); i++) {
                long child = edges.get((long) node << 16 | word.charAt(i));
                if (child < 0) break;
                node = (int) child;
                if (nodeToken[node] >= 0) {
                    bestEnd = i + 1;
                    bestId = nodeToken[node];
                }
            }
            if (bestId < 0) {
                out.add(unkId);
                return;
            }
            pieces[count++] = bestId;
            start = bestEnd;
        }
        out.addAll(Arrays.copyOf(pieces, count));
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
}
