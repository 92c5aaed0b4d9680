package brm.batch;

import brm.BrmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TemplateTest {
    @Test
    void builtInTemplates() {
        assertEquals("Once upon a time, a cat sat.", Template.parse("none").apply("Once upon a time,", null, " a cat sat."));
        assertEquals(" a cat sat.", Template.parse("response").apply("Once upon a time,", null, " a cat sat."), "the proxy never sees the prompt");
        String alpaca = Template.parse("alpaca").apply("Name a colour.", "", " Red.");
        assertTrue(alpaca.startsWith("Below is an instruction") && alpaca.contains("### Instruction:\nName a colour.") && alpaca.endsWith("### Response: Red."), alpaca);
    }

    @Test
    void fileTemplatesNeedOnlyTheResponse(@TempDir Path tmp) throws IOException {
        Path file = Files.writeString(tmp.resolve("t.txt"), "Q: {prompt} A:{response} ({prompt})");
        assertEquals("Q: {response} A: x ({response})", Template.parse(file.toString()).apply("{response}", null, " x"), "substitution is one pass");
        Path responseOnly = Files.writeString(tmp.resolve("r.txt"), "Story:{response}");
        assertEquals("Story: x", Template.parse(responseOnly.toString()).apply("p", null, " x"));
        Path bad = Files.writeString(tmp.resolve("bad.txt"), "{prompt} only");
        BrmException e = assertThrows(BrmException.class, () -> Template.parse(bad.toString()));
        assertTrue(e.getMessage().contains("bad.txt") && e.getMessage().contains("{response}"), e.getMessage());
    }
}
