package brm.imports.llama2c;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import brm.io.DataFolder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The imported tokenizer.json, run by Hugging Face's tokenizers library (through DJL), encodes as
 * llama2.c's encode does ({@link Llama2cReferenceEncoder}) and decodes back to the text.
 * This class owns DJL's start-up: the properties must be set before any DJL class loads.
 */
class Llama2cTokenizerTest {
    static {
        System.setProperty("OPT_OUT_TRACKING", "true");
        System.setProperty("RUST_FLAVOR", "cpu");
        System.setProperty("ai.djl.offline", "true");
    }

    /** From tinystories-sample/SOURCE.txt: the first story, BOS + llama2.c encoding. */
    private static final long[] FIRST_STORY_IDS = {1, 403, 407, 261, 378, 383, 286, 261, 376, 268, 414, 422, 395, 368, 302, 426};

    @TempDir
    static Path out;
    static HuggingFaceTokenizer hf;
    static Llama2cReferenceEncoder reference;

    @BeforeAll
    static void importTokenizer() throws IOException {
        Path tokenizer = DataFolder.require("stories260K", "tok512.bin", "github.com/ytmytm/llama2.c64");
        Path checkpoint = DataFolder.require("stories260K", "stories260K.bin", "github.com/ytmytm/llama2.c64");
        Path dir = out.resolve("stories260K");
        Llama2cImporter.importModel(checkpoint, tokenizer, dir, false);
        hf = HuggingFaceTokenizer.builder().optTokenizerPath(dir)
                .optAddSpecialTokens(true).optTruncation(false).optPadding(false).build();
        reference = new Llama2cReferenceEncoder(tokenizer);
    }

    @AfterAll
    static void close() {
        if (hf != null) hf.close();
    }

    private static long[] expected(String text) {
        return reference.encode(text).stream().mapToLong(Integer::longValue).toArray();
    }

    private static void assertEncodesLikeLlama2c(String text) {
        long[] ids = hf.encode(text).getIds();
        assertEquals(Arrays.toString(expected(text)), Arrays.toString(ids), () -> "encoding of " + quote(text));
        assertEquals(text, hf.decode(ids, true), () -> "decoding of " + quote(text));
    }

    private static String quote(String text) {
        return "\"" + text.replace("\n", "\\n").replace("\t", "\\t") + "\"";
    }

    @Test
    void tinyStoriesSampleEncodesAsLlama2c() throws IOException {
        String sample = Files.readString(DataFolder.require("tinystories-sample", "tinystories_sample.txt",
                "github.com/wdb2021/CS336"), StandardCharsets.UTF_8);
        List<String> stories = Arrays.stream(sample.split("<\\|endoftext\\|>")).map(String::strip).filter(s -> !s.isEmpty()).toList();
        assertEquals(5, stories.size());
        long[] first = hf.encode(stories.getFirst()).getIds();
        assertEquals(Arrays.toString(FIRST_STORY_IDS), Arrays.toString(Arrays.copyOf(first, FIRST_STORY_IDS.length)));
        for (String story : stories) assertEncodesLikeLlama2c(story);
        assertEncodesLikeLlama2c(sample);
    }

    @Test
    void edgeCasesEncodeAsLlama2c() {
        for (String text : List.of("", " ", "  ", "\n", "a", " a", "a ", "Once upon a time", "  two  spaces  ",
                "line\nbreak\n\n", "tab\there", "12345 + 678 = 9023", "café, señor, naïve", "“quoted” — dash…",
                "中文字符", "emoji 😀🎉", "\u00a0nbsp\u00a0", "e\u0301", "<0x41> <unk", "s> </", "Lily and Timmy."))
            assertEncodesLikeLlama2c(text);
    }

    /**
     * Fresh random strings from vocabulary pieces (which exercise the merges), letters, digits,
     * whitespace and code points outside the vocabulary (byte fallback). Skipped: a literal "▁" and
     * the special tokens' text, which HF tokenizers treat differently by design (see Llama2cTokenizer).
     */
    @Test
    void randomStringsEncodeAsLlama2c() {
        long seed = System.nanoTime();
        Random random = new Random(seed);
        List<String> parts = new ArrayList<>();
        for (int id = 259; id < reference.pieces.size(); id++)
            parts.add(new String(reference.pieces.get(id).getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8));
        parts.addAll(List.of(" ", "  ", "\n", "\t", "\r\n", "\u00a0", ".", ",", "!", "?", "'", "\"", "<", ">", "/",
                "0", "1", "42", "2024", "é", "ñ", "ß", "ü", "Ω", "中", "日本", "😀", "€", "—", "“", "”", "\u200a", "\u0301", "~"));
        for (char c = 'a'; c <= 'z'; c++) parts.add(String.valueOf(c));
        for (char c = 'A'; c <= 'Z'; c++) parts.add(String.valueOf(c));
        int checked = 0;
        while (checked < 400) {
            StringBuilder text = new StringBuilder();
            int length = random.nextInt(30);
            for (int i = 0; i < length; i++) text.append(parts.get(random.nextInt(parts.size())));
            String s = text.toString();
            if (s.contains("<s>") || s.contains("</s>") || s.contains("<unk>")) continue;
            try {
                assertEncodesLikeLlama2c(s);
            } catch (AssertionError e) {
                throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
            }
            checked++;
        }
    }
}
