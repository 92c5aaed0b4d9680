package brm.io;

import brm.BrmException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * JSON Lines in and out. Reading is strict: each non-blank line must be valid UTF-8 holding one JSON
 * object, and every error names the file and line. Blank lines are skipped (and counted in line numbers).
 */
public final class Jsonl {
    public static final ObjectMapper JSON = new ObjectMapper();

    private Jsonl() {}

    /** One input record and the 1-based line it came from. */
    public record Line(int number, ObjectNode value) {}

    public static List<Line> read(Path path) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (NoSuchFileException e) {
            throw new BrmException(path + ": no such file");
        } catch (IOException e) {
            throw new BrmException(path + ": cannot read: " + e.getMessage(), e);
        }
        return parse(path.toString(), bytes);
    }

    public static List<Line> read(String name, InputStream in) {
        try {
            return parse(name, in.readAllBytes());
        } catch (IOException e) {
            throw new BrmException(name + ": cannot read: " + e.getMessage(), e);
        }
    }

    static List<Line> parse(String name, byte[] bytes) {
        List<Line> lines = new ArrayList<>();
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        int start = 0, number = 0;
        while (start < bytes.length) {
            int end = start;
            while (end < bytes.length && bytes[end] != '\n') end++;
            number++;
            String text;
            try {
                text = utf8.decode(ByteBuffer.wrap(bytes, start, end - start)).toString();
            } catch (CharacterCodingException e) {
                throw new BrmException(name + ":" + number + ": not valid UTF-8");
            }
            if (!text.isBlank()) {
                JsonNode node;
                try {
                    node = JSON.readTree(text);
                } catch (JsonProcessingException e) {
                    throw new BrmException(name + ":" + number + ": malformed JSON: " + e.getOriginalMessage());
                }
                if (!(node instanceof ObjectNode object))
                    throw new BrmException(name + ":" + number + ": expected a JSON object, got " + node.getNodeType().toString().toLowerCase());
                lines.add(new Line(number, object));
            }
            start = end + 1;
        }
        return lines;
    }

    /** Writes one JSON value and a newline. */
    public static void writeLine(OutputStream out, JsonNode value) throws IOException {
        out.write(JSON.writeValueAsBytes(value));
        out.write('\n');
    }
}
