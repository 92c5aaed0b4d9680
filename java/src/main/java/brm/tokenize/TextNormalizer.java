package brm.tokenize;

import java.text.Normalizer;
import java.util.List;

/**
 * The {@code normalizer} of a tokenizer.json: a pure String → String map applied to each piece of
 * text between added tokens (only ids matter here, so no offset alignment is kept).
 */
sealed interface TextNormalizer {
    /** text (any length) → normalized text. */
    String normalize(String text);

    /** NFC, NFD, NFKC or NFKD, as of Unicode 9.0 ({@link Unicode#normalize}). */
    record UnicodeForm(Normalizer.Form form) implements TextNormalizer {
        public String normalize(String text) {
            return Unicode.normalize(text, form);
        }
    }

    /** Per code point full lowercase mapping (no context: a final Σ becomes σ, as in Rust). */
    record Lowercase() implements TextNormalizer {
        public String normalize(String text) {
            StringBuilder out = new StringBuilder(text.length());
            text.codePoints().forEach(cp -> Unicode.appendLowercase(out, cp));
            return out.toString();
        }
    }

    /**
     * BERT's cleanup, in this order: drop NUL, U+FFFD and C* chars except \t\n\r and map
     * White_Space to ' ' (cleanText); surround CJK ideographs with spaces; NFD and drop Mn
     * (stripAccents, which the file's null turns into "same as lowercase"); lowercase.
     */
    record Bert(boolean cleanText, boolean handleChineseChars, boolean stripAccents, boolean lowercase)
            implements TextNormalizer {
        public String normalize(String text) {
            StringBuilder out = new StringBuilder(text.length() + 8);
            boolean ascii = true;
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                i += Character.charCount(cp);
                if (cleanText) {
                    boolean tabOrNewline = cp == '\t' || cp == '\n' || cp == '\r';
                    if (cp == 0 || cp == 0xFFFD || (!tabOrNewline && Unicode.isOther(cp))) continue;
                    if (tabOrNewline || Unicode.isWhiteSpace(cp)) cp = ' ';
                }
                ascii &= cp < 0x80;
                if (handleChineseChars && Unicode.isChineseChar(cp)) out.append(' ').appendCodePoint(cp).append(' ');
                else out.appendCodePoint(cp);
            }
            if (ascii) { // NFD changes no ASCII char and none is a mark: only lowercasing is left
                if (lowercase) for (int i = 0; i < out.length(); i++) out.setCharAt(i, Character.toLowerCase(out.charAt(i)));
                return out.toString();
            }
            String s = out.toString();
            if (stripAccents) {
                String nfd = Unicode.normalize(s, Normalizer.Form.NFD);
                out.setLength(0);
                nfd.codePoints().filter(cp -> !Unicode.isNonSpacingMark(cp)).forEach(out::appendCodePoint);
                s = out.toString();
            }
            return lowercase ? new Lowercase().normalize(s) : s;
        }
    }

    /** Prepends a string to every non-empty piece (SentencePiece's dummy prefix "▁"). */
    record Prepend(String prefix) implements TextNormalizer {
        public String normalize(String text) {
            return text.isEmpty() ? text : prefix + text;
        }
    }

    /** Replaces every non-overlapping occurrence of a literal pattern, left to right. */
    record Replace(String pattern, String content) implements TextNormalizer {
        public String normalize(String text) {
            return text.replace(pattern, content);
        }
    }

    record Sequence(List<TextNormalizer> steps) implements TextNormalizer {
        public String normalize(String text) {
            for (TextNormalizer step : steps) text = step.normalize(text);
            return text;
        }
    }
}
