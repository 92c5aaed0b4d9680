package brm.tokenize;

import java.util.ArrayList;
import java.util.List;

/**
 * The {@code pre_tokenizer} of a tokenizer.json: cuts one normalized piece of text into the words
 * the model tokenizes independently (and, for ByteLevel, rewrites them in the byte alphabet).
 */
sealed interface PreTokenizer {
    /**
     * A word and whether it starts at offset 0 of the original text (which only Metaspace's
     * "first" prepend scheme looks at).
     */
    record Piece(String text, boolean atStart) {}

    /** Appends the non-empty words of piece to out. */
    void split(Piece piece, List<Piece> out);

    /** GPT-2: optional leading space, the GPT-2 pattern ({@link ByteLevel#nextSplit}), byte alphabet. */
    record ByteLevelSplit(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        public void split(Piece piece, List<Piece> out) {
            String text = addPrefixSpace && !piece.text().startsWith(" ") ? " " + piece.text() : piece.text();
            StringBuilder word = new StringBuilder(16);
            int n = text.length();
            for (int start = 0; start < n; ) {
                int end = useRegex ? ByteLevel.nextSplit(text, start) : n;
                word.setLength(0);
                ByteLevel.appendBytes(word, text, start, end);
                out.add(new Piece(word.toString(), piece.atStart() && start == 0));
                start = end;
            }
        }
    }

    /** BERT: drop White_Space, and isolate every punctuation char ({@link Unicode#isBertPunctuation}). */
    record Bert() implements PreTokenizer {
        public void split(Piece piece, List<Piece> out) {
            String text = piece.text();
            int wordStart = 0;
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                int next = i + Character.charCount(cp);
                boolean space = Unicode.isWhiteSpace(cp);
                if (space || Unicode.isBertPunctuation(cp)) {
                    if (wordStart < i) out.add(new Piece(text.substring(wordStart, i), piece.atStart() && wordStart == 0));
                    if (!space) out.add(new Piece(text.substring(i, next), piece.atStart() && i == 0));
                    wordStart = next;
                }
                i = next;
            }
            if (wordStart < text.length()) out.add(new Piece(text.substring(wordStart), piece.atStart() && wordStart == 0));
        }
    }

    /** When Metaspace puts the replacement char in front of a piece. */
    enum PrependScheme { ALWAYS, FIRST, NEVER }

    /**
     * SentencePiece: ' ' → replacement ("▁"), prepend one replacement (always, only at the start of
     * the text, or never) unless present, then cut before each replacement char.
     */
    record Metaspace(String replacement, PrependScheme prependScheme, boolean splitOnReplacement) implements PreTokenizer {
        public void split(Piece piece, List<Piece> out) {
            String text = piece.text().replace(" ", replacement);
            boolean prepend = prependScheme == PrependScheme.ALWAYS
                    || prependScheme == PrependScheme.FIRST && piece.atStart();
            if (prepend && !text.startsWith(replacement)) text = replacement + text;
            if (!splitOnReplacement) {
                out.add(new Piece(text, piece.atStart()));
                return;
            }
            int start = 0;
            for (int at = text.indexOf(replacement, 1); at >= 0; at = text.indexOf(replacement, at + 1)) {
                out.add(new Piece(text.substring(start, at), piece.atStart() && start == 0));
                start = at;
            }
            out.add(new Piece(text.substring(start), piece.atStart() && start == 0));
        }
    }

    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        public void split(Piece piece, List<Piece> out) {
            List<Piece> current = List.of(piece);
            for (PreTokenizer step : steps) {
                List<Piece> next = new ArrayList<>();
                for (Piece p : current) step.split(p, next);
                current = next;
            }
            out.addAll(current);
        }
    }
}
