package brm.tokenize;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code decoder} of a tokenizer.json: rewrites the list of token strings step by step; the
 * decoded text is the concatenation of what the last step returns.
 */
sealed interface Decoder {
    /** tokens (n strings) → rewritten tokens (any count). */
    List<String> decodeChain(List<String> tokens);

    /** Byte alphabet back to bytes ({@link ByteLevel#appendTokenBytes}), then lossy UTF-8. */
    record ByteLevelBytes() implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            for (String token : tokens) ByteLevel.appendTokenBytes(bytes, token);
            return List.of(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
        }
    }

    /** Glue "##" continuations to the previous token, put a space before the others; optional cleanup. */
    record WordPieceJoin(String prefix, boolean cleanup) implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                String token = tokens.get(i);
                if (i > 0) token = token.startsWith(prefix) ? token.substring(prefix.length()) : " " + token;
                out.add(cleanup ? cleanup(token) : token);
            }
            return out;
        }

        /** Undoes the spaces WordPiece decoding leaves before punctuation and English contractions. */
        static String cleanup(String text) {
            return text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
                    .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" do not", " don't")
                    .replace(" 's", "'s").replace(" 've", "'ve").replace(" 're", "'re");
        }
    }

    /** The replacement char ("▁") back to ' ', dropped in the first token unless the scheme is never. */
    record MetaspaceSpaces(String replacement, PreTokenizer.PrependScheme prependScheme) implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                boolean drop = i == 0 && prependScheme != PreTokenizer.PrependScheme.NEVER;
                out.add(tokens.get(i).replace(replacement, drop ? "" : " "));
            }
            return out;
        }
    }

    /** Literal replace in every token. */
    record Replace(String pattern, String content) implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            return tokens.stream().map(token -> token.replace(pattern, content)).toList();
        }
    }

    /**
     * Runs of {@code <0xNN>} tokens become the text of their bytes when those are valid UTF-8, else
     * one U+FFFD per byte; other tokens pass through.
     */
    record ByteFallback() implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            ByteArrayOutputStream run = new ByteArrayOutputStream();
            for (String token : tokens) {
                int b = byteToken(token);
                if (b >= 0) {
                    run.write(b);
                    continue;
                }
                flush(run, out);
                out.add(token);
            }
            flush(run, out);
            return out;
        }

        /** The byte of a {@code <0xNN>} token (ASCII hex; Rust's parser also takes "+N"), or -1. */
        private static int byteToken(String token) {
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') return -1;
            char high = token.charAt(3), low = token.charAt(4);
            if (high == '+') return hexDigit(low);
            int h = hexDigit(high), l = hexDigit(low);
            return h < 0 || l < 0 ? -1 : h * 16 + l;
        }

        private static int hexDigit(char c) {
            return c < 128 ? Character.digit(c, 16) : -1;
        }

        private static void flush(ByteArrayOutputStream run, List<String> out) {
            if (run.size() == 0) return;
            byte[] bytes = run.toByteArray();
            run.reset();
            try {
                out.add(StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString());
            } catch (CharacterCodingException e) {
                for (int i = 0; i < bytes.length; i++) out.add("\uFFFD");
            }
        }
    }

    /** All tokens into one. */
    record Fuse() implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            return List.of(String.join("", tokens));
        }
    }

    /** Removes up to start leading and stop trailing copies of one char from every token. */
    record Strip(int content, int start, int stop) implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String token : tokens) {
                int[] chars = token.codePoints().toArray();
                int from = 0;
                while (from < Math.min(start, chars.length) && chars[from] == content) from++;
                int to = chars.length;
                while (chars.length - to < Math.min(stop, chars.length - from) && chars[to - 1] == content) to--;
                out.add(new String(chars, from, to - from));
            }
            return out;
        }
    }

    record Sequence(List<Decoder> steps) implements Decoder {
        public List<String> decodeChain(List<String> tokens) {
            for (Decoder step : steps) tokens = step.decodeChain(tokens);
            return tokens;
        }
    }
}
