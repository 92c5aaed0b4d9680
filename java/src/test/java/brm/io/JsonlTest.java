package brm.io;

import brm.BrmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonlTest {
    @TempDir
    Path dir;

    Path file(byte[] bytes) throws IOException {
        Path p = Files.createTempFile(dir, "in", ".jsonl");
        Files.write(p, bytes);
        return p;
    }

    @Test
    void readsObjectsWithLineNumbersSkippingBlankLines() throws IOException {
        var lines = Jsonl.read(file("{\"a\":1}\n\n  \n{\"b\":\"\u00e9\"}".getBytes("UTF-8")));
        assertEquals(2, lines.size());
        assertEquals(1, lines.get(0).number());
        assertEquals(4, lines.get(1).number());
        assertEquals("\u00e9", lines.get(1).value().get("b").asText());
    }

    @Test
    void errorsNameTheLine() throws IOException {
        Path bad = file("{\"a\":1}\n{\"a\":\n".getBytes());
        var e = assertThrows(BrmException.class, () -> Jsonl.read(bad));
        assertTrue(e.getMessage().startsWith(bad + ":2: malformed JSON"), e.getMessage());
        Path array = file("[1,2]\n".getBytes());
        e = assertThrows(BrmException.class, () -> Jsonl.read(array));
        assertTrue(e.getMessage().contains(":1: expected a JSON object, got array"), e.getMessage());
        Path latin1 = file(new byte[] {'{', '"', 'a', '"', ':', '"', (byte) 0xe9, '"', '}', '\n'});
        e = assertThrows(BrmException.class, () -> Jsonl.read(latin1));
        assertTrue(e.getMessage().endsWith(":1: not valid UTF-8"), e.getMessage());
        e = assertThrows(BrmException.class, () -> Jsonl.read(dir.resolve("none.jsonl")));
        assertTrue(e.getMessage().endsWith("no such file"));
    }

    @Test
    void atomicWriteLeavesNothingOnFailure() throws IOException {
        Path out = dir.resolve("out.jsonl");
        assertThrows(IllegalStateException.class, () -> AtomicFiles.write(out, o -> {
            o.write("partial".getBytes());
            throw new IllegalStateException("boom");
        }));
        assertFalse(Files.exists(out));
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "temporary file left behind");
        }
    }
}
