package brm.io;

import brm.BrmException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
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
 * JSON Lines in and out. Reading streams and is strict: each non-blank line must be valid UTF-8 holding
 * one JSON object, and every error names the source and line. Blank lines are skipped (and counted in
 * line numbers).
 */
public final class Jsonl {
    public static final ObjectMapper JSON = new ObjectMapper();

    private Jsonl() {}

    /** One input record and the 1-based line it came from. */
    public record Line(int number, ObjectNode value) {}

    /** A streaming reader; {@link #next()} returns null at the end. */
    public static final class Reader implements AutoCloseable {
        private final String name;
        private final InputStream in;
        private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        private final ByteArrayOutputStream buffer = new ByteArrayOutputStream(1 << 12);
        private int number;

        public Reader(String name, InputStream in) {
            this.name = name;
            this.in = in instanceof BufferedInputStream ? in : new BufferedInputStream(in, 1 << 16);
        }

        public static Reader open(Path path) {
            try {
                return new Reader(path.toString(), Files.newInputStream(path));
            } catch (NoSuchFileException e) {
                throw new BrmException(path + ": no such file");
            } catch (IOException e) {
                throw new BrmException(path + ": cannot read: " + e.getMessage(), e);
            }
        }

        public Line next() {
            try {
                while (true) {
                    buffer.reset();
                    int b;
                    while ((b = in.read()) != -1 && b != '\n') buffer.write(b);
                    if (b == -1 && buffer.size() == 0) return null;
                    number++;
                    String text;
                    try {
                        text = utf8.decode(ByteBuffer.wrap(buffer.toByteArray())).toString();
                    } catch (CharacterCodingException e) {
                        throw new BrmException(name + ":" + number + ": not valid UTF-8");
                    }
                    if (text.isBlank()) continue;
                    JsonNode node;
                    try {
                        node = JSON.readTree(text);
                    } catch (JsonProcessingException e) {
                        throw new BrmException(name + ":" + number + ": malformed JSON at column "
                                + (e.getLocation() == null ? "?" : e.getLocation().getColumnNr()) + ": " + reason(e));
                    }
                    if (!(node instanceof ObjectNode object))
                        throw new BrmException(name + ":" + number + ": expected a JSON object, got "
                                + node.getNodeType().toString().toLowerCase());
                    return new Line(number, object);
                }
            } catch (IOException e) {
                throw new BrmException(name + ":" + (number + 1) + ": cannot read: " + e.getMessage(), e);
            }
        }

        /** Jackson's message without its source excerpt and its own (always 1) line number. */
        private static String reason(JsonProcessingException e) {
            String m = e.getOriginalMessage();
            int cut = m.indexOf(" (start marker");
            if (cut >= 0) m = m.substring(0, cut);
            return m.lines().findFirst().orElse(m);
        }

        public String name() {
            return name;
        }

        @Override
        public void close() {
            try {
                in.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** All lines of a file. */
    public static List<Line> read(Path path) {
        List<Line> lines = new ArrayList<>();
        try (Reader reader = Reader.open(path)) {
            for (Line l; (l = reader.next()) != null; ) lines.add(l);
        }
        return lines;
    }

    /** Writes one JSON value and a newline. */
    public static void writeLine(OutputStream out, JsonNode value) throws IOException {
        out.write(JSON.writeValueAsBytes(value));
        out.write('\n');
    }
}
