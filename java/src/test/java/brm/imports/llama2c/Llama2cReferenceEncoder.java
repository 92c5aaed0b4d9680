package brm.imports.llama2c;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Test reference: llama2.c's encode (run.c) on the raw tokenizer.bin, byte for byte, independent of the
 * importer. Pieces are kept as bytes (ISO-8859-1 strings, one char per byte) with their literal spaces.
 *
 * encode(text): [BOS] + [" "] when text is non-empty + per UTF-8 code point its piece, else its bytes
 * as ids byte + 3; then, while some adjacent pair concatenates to a piece, merge the pair whose piece
 * scores highest (the leftmost on ties).
 */
final class Llama2cReferenceEncoder {
    final List<String> pieces = new ArrayList<>();
    private final List<Float> scores = new ArrayList<>();
    private final Map<String, Integer> ids = new HashMap<>();

    Llama2cReferenceEncoder(Path tokenizerBin) throws IOException {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(tokenizerBin)).order(ByteOrder.LITTLE_ENDIAN);
        in.getInt(); // max_token_length
        while (in.hasRemaining()) {
            scores.add(in.getFloat());
            byte[] piece = new byte[in.getInt()];
            in.get(piece);
            ids.put(new String(piece, StandardCharsets.ISO_8859_1), pieces.size());
            pieces.add(new String(piece, StandardCharsets.ISO_8859_1));
        }
    }

    List<Integer> encode(String text) {
        List<Integer> tokens = new ArrayList<>();
        tokens.add(1);
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        if (utf8.length > 0) tokens.add(ids.get(" "));
        for (int i = 0; i < utf8.length; ) {
            int end = i + 1;
            while (end < utf8.length && (utf8[end] & 0xC0) == 0x80 && end - i < 4) end++;
            Integer id = ids.get(new String(utf8, i, end - i, StandardCharsets.ISO_8859_1));
            if (id != null) tokens.add(id);
            else for (int b = i; b < end; b++) tokens.add((utf8[b] & 0xFF) + 3);
            i = end;
        }
        while (true) {
            float best = -1e10f;
            int bestId = -1, bestAt = -1;
            for (int i = 0; i + 1 < tokens.size(); i++) {
                Integer id = ids.get(pieces.get(tokens.get(i)) + pieces.get(tokens.get(i + 1)));
                if (id != null && scores.get(id) > best) {
                    best = scores.get(id);
                    bestId = id;
                    bestAt = i;
                }
            }
            if (bestAt < 0) return tokens;
            tokens.set(bestAt, bestId);
            tokens.remove(bestAt + 1);
        }
    }
}
