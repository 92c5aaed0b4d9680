package brm.tokenize;

import java.util.Map;

/**
 * BERT's WordPiece: greedy longest-match-first over a word. From the current start, take the
 * longest vocab entry (written with the "##" continuing prefix unless at the word's start); if no
 * prefix of the rest is in the vocab, or the word has more than max_input_chars_per_word chars,
 * the whole word becomes the unk token.
 */
final class WordPiece implements TokenModel {
    private final Vocab vocab;
    private final String unkToken;
    private final int unkId;
    private final String continuingSubwordPrefix;
    private final int maxInputCharsPerWord;
    /** No vocab entry is longer than this (UTF-16 units), so no longer candidate is ever tried. */
    private final int longestToken;

    WordPiece(Map<String, Integer> vocab, String unkToken, String continuingSubwordPrefix, int maxInputCharsPerWord) {
        this.vocab = Vocab.of(vocab);
        this.unkToken = unkToken;
        this.unkId = this.vocab.require(unkToken, "unk_token");
        this.continuingSubwordPrefix = continuingSubwordPrefix;
        this.maxInputCharsPerWord = maxInputCharsPerWord;
        this.longestToken = vocab.keySet().stream().mapToInt(String::length).max().orElse(0);
    }

    @Override
    public void tokenize(String word, IntList out) {
        if (word.codePointCount(0, word.length()) > maxInputCharsPerWord) {
            out.add(unkId);
            return;
        }
        IntList pieces = new IntList();
        for (int start = 0; start < word.length(); ) {
            int end = Math.min(word.length(), start + longestToken);
            if (end < word.length() && Character.isLowSurrogate(word.charAt(end))) end--;
            Integer id = null;
            while (start < end) {
                String candidate = word.substring(start, end);
                id = vocab.ids().get(start > 0 ? continuingSubwordPrefix + candidate : candidate);
                if (id != null) break;
                end = word.offsetByCodePoints(end, -1);
            }
            if (id == null) {
                out.add(unkId);
                return;
            }
            pieces.add(id);
            start = end;
        }
        out.addAll(pieces.toArray());
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
