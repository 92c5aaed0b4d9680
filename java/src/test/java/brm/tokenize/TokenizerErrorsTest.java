package brm.tokenize;

import brm.BrmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad tokenizer files fail with one BrmException line naming the file and what is wrong. */
class TokenizerErrorsTest {
    @TempDir
    Path dir;

    private static final String WORDPIECE_MODEL =
            "{\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0, \"a\": 1}}";

    private BrmException loadFails(String json) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, json);
        BrmException e = assertThrows(BrmException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().lines().count() == 1, e.getMessage());
        return e;
    }

    private static void assertMentions(BrmException e, String... words) {
        for (String word : words) assertTrue(e.getMessage().contains(word), "'" + word + "' not in: " + e.getMessage());
    }

    @Test
    void missingFile() {
        Path file = dir.resolve("absent/tokenizer.json");
        BrmException e = assertThrows(BrmException.class, () -> Tokenizer.load(file));
        assertMentions(e, file.toString(), "not found");
    }

    @Test
    void malformedJson() throws IOException {
        assertMentions(loadFails("{\"model\": {\"type\": \"BPE\", "), "malformed JSON");
        assertMentions(loadFails("[1, 2, 3]"), "malformed JSON");
    }

    @Test
    void missingModel() throws IOException {
        assertMentions(loadFails("{\"normalizer\": null}"), "model");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}| model | Unigram",
            "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}| model | WordLevel",
            "{\"normalizer\": {\"type\": \"Precompiled\"}, \"model\": MODEL}| normalizer | Precompiled",
            "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, \"content\": \" \"}, \"model\": MODEL}| Replace pattern | Regex",
            "{\"pre_tokenizer\": {\"type\": \"Split\"}, \"model\": MODEL}| pre_tokenizer | Split",
            "{\"post_processor\": {\"type\": \"Fancy\"}, \"model\": MODEL}| post_processor | Fancy",
            "{\"decoder\": {\"type\": \"CTC\"}, \"model\": MODEL}| decoder | CTC",
            "{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"BPEDecoder\"}]}, \"model\": MODEL}| decoder | BPEDecoder",
            "{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {\"a\": 0}, \"merges\": []}}| BPE | dropout",
            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}| merge | 'b'",
            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a a\"]}}| bad BPE merge | a a a",
            "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}| unk_token | [UNK]",
            "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"B\", \"type_id\": 0}}], \"special_tokens\": {}}, \"model\": MODEL}| TemplateProcessing | $B",
    })
    void unsupportedOrBrokenComponent(String json, String component, String detail) throws IOException {
        assertMentions(loadFails(json.replace("MODEL", WORDPIECE_MODEL)), component.strip(), detail.strip());
    }
}
