package brm.tokenize;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's byte-level alphabet and its pre-tokenizer pattern.
 *
 * Alphabet: every UTF-8 byte b becomes one printable char: b itself for '!'..'~', '¡'..'¬',
 * '®'..'ÿ', and 256 + k for the k-th remaining byte (so ' ' → 'Ġ', '\n' → 'Ċ').
 *
 * Pattern ({@link #nextSplit}): the regex
 * {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}
 * as a hand-written leftmost-first scanner, linear in the input (no backtracking).
 */
final class ByteLevel {
    private ByteLevel() {}

    /** byte (0..255) → its alphabet char. */
    static final char[] BYTE_TO_CHAR = new char[256];
    /** alphabet char → byte, or -1 for chars outside the alphabet. */
    private static final short[] CHAR_TO_BYTE = new short[324];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = (char) (printable ? b : next++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    /** Appends the alphabet chars of text[from, to)'s UTF-8 bytes to out. */
    static void appendBytes(StringBuilder out, String text, int from, int to) {
        for (int i = from; i < to; ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < 0x80) {
                out.append(BYTE_TO_CHAR[cp]);
            } else if (cp < 0x800) {
                out.append(BYTE_TO_CHAR[0xC0 | (cp >> 6)]).append(BYTE_TO_CHAR[0x80 | (cp & 0x3F)]);
            } else if (cp < 0x10000) {
                out.append(BYTE_TO_CHAR[0xE0 | (cp >> 12)]).append(BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3F)])
                        .append(BYTE_TO_CHAR[0x80 | (cp & 0x3F)]);
            } else {
                out.append(BYTE_TO_CHAR[0xF0 | (cp >> 18)]).append(BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3F)])
                        .append(BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3F)]).append(BYTE_TO_CHAR[0x80 | (cp & 0x3F)]);
            }
        }
    }

    /**
     * Appends the bytes a token stands for: its chars mapped back through the alphabet, or, when
     * some char is outside it (an added token such as "<|endoftext|>" is), its own UTF-8 bytes.
     */
    static void appendTokenBytes(ByteArrayOutputStream out, String token) {
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            if (c >= CHAR_TO_BYTE.length || CHAR_TO_BYTE[c] < 0) {
                out.writeBytes(token.getBytes(StandardCharsets.UTF_8));
                return;
            }
        }
        for (int i = 0; i < token.length(); i++) out.write(CHAR_TO_BYTE[token.charAt(i)]);
    }

    /** End (exclusive) of the pattern match starting at {@code i < text.length()}. */
    static int nextSplit(String text, int i) {
        int n = text.length();
        int c = text.codePointAt(i);
        if (c == '\'' && i + 1 < n) {
            char a = text.charAt(i + 1);
            if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
            if (i + 2 < n) {
                char b = text.charAt(i + 2);
                if ((a == 'r' || a == 'v') && b == 'e' || a == 'l' && b == 'l') return i + 3;
            }
        }
        // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class
        int k = i;
        if (c == ' ' && i + 1 < n) k = i + 1;
        int head = text.codePointAt(k);
        int cls = charClass(head);
        if (cls != WHITESPACE) {
            int j = k + Character.charCount(head);
            while (j < n) {
                int cp = text.codePointAt(j);
                if (charClass(cp) != cls) break;
                j += Character.charCount(cp);
            }
            return j;
        }
        // "\s+(?!\S)|\s+": a whitespace run, leaving its last char to the next word when one follows
        int j = i;
        while (j < n && Unicode.isWhiteSpace(text.charAt(j))) j++;
        return j < n && j - i >= 2 ? j - 1 : j;
    }

    private static final int LETTER = 0, NUMBER = 1, OTHER = 2, WHITESPACE = 3;

    private static int charClass(int cp) {
        if (cp < 0x80) {
            if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return LETTER;
            if (cp >= '0' && cp <= '9') return NUMBER;
            return Unicode.isWhiteSpace(cp) ? WHITESPACE : OTHER;
        }
        if (Unicode.isLetter(cp)) return LETTER;
        if (Unicode.isNumber(cp)) return NUMBER;
        return Unicode.isWhiteSpace(cp) ? WHITESPACE : OTHER;
    }
}
