package brm.tokenize;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Token ids and decoded text against the HF tokenizers library (via DJL) on real tokenizer.json
 * files: GPT-NeoX-20B (byte-level BPE, all Pythia models) and three BERT WordPiece encoders.
 */
class TokenizerParityTest {
    @TempDir
    static Path jarCopies;

    private record Pair(Tokenizer mine, HfReference hf) {}

    private static final Map<String, Pair> LOADED = new HashMap<>();
    private static final List<String> CORPUS = TestTexts.corpus();

    private static Pair pair(String name) {
        return LOADED.computeIfAbsent(name, n -> {
            Path file = switch (n) {
                case "gpt-neox-20b" -> TestTexts.sharedData().resolve("gpt-neox-20b-tokenizer/20B_tokenizer.json");
                case "all-minilm-l6-v2" -> HfReference.resourceToFile("all-minilm-l6-v2-tokenizer.json", jarCopies);
                case "bge-small-en-v1.5" -> HfReference.resourceToFile("bge-small-en-v1.5-tokenizer.json", jarCopies);
                case "e5-small-v2" -> HfReference.resourceToFile("e5-small-v2-tokenizer.json", jarCopies);
                default -> throw new IllegalArgumentException(n);
            };
            return new Pair(Tokenizer.load(file), HfReference.load(file));
        });
    }

    @AfterAll
    static void closeReferences() {
        LOADED.values().forEach(p -> p.hf().close());
        LOADED.clear();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt-neox-20b", "all-minilm-l6-v2", "bge-small-en-v1.5", "e5-small-v2"})
    void encodeMatchesHf(String name) {
        Pair p = pair(name);
        List<String> mismatches = new ArrayList<>();
        for (String text : CORPUS) {
            for (boolean special : new boolean[]{false, true}) {
                int[] expected = p.hf().encode(text, special), actual = p.mine().encode(text, special);
                if (!Arrays.equals(expected, actual))
                    mismatches.add(escape(text) + " special=" + special + "\n  hf:   " + Arrays.toString(expected)
                            + "\n  mine: " + Arrays.toString(actual));
            }
        }
        assertTrue(CORPUS.size() > 300, "corpus too small: " + CORPUS.size());
        assertNoMismatch(name, mismatches, CORPUS.size() * 2);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt-neox-20b", "all-minilm-l6-v2", "bge-small-en-v1.5", "e5-small-v2"})
    void decodeMatchesHf(String name) {
        Pair p = pair(name);
        List<int[]> idLists = new ArrayList<>();
        for (String text : CORPUS) idLists.add(p.hf().encode(text, true));
        Random rng = new Random(7);
        for (int i = 0; i < 200; i++) {
            int[] ids = new int[rng.nextInt(30)];
            // random ids, some past the vocabulary (dropped) and many low ids (special / byte tokens)
            for (int j = 0; j < ids.length; j++)
                ids[j] = rng.nextBoolean() ? rng.nextInt(p.mine().vocabSize() + 10) : rng.nextInt(300);
            idLists.add(ids);
        }
        List<String> mismatches = new ArrayList<>();
        for (int[] ids : idLists) {
            for (boolean skip : new boolean[]{false, true}) {
                String expected = p.hf().decode(ids, skip), actual = p.mine().decode(ids, skip);
                if (!expected.equals(actual))
                    mismatches.add(Arrays.toString(ids) + " skip=" + skip + "\n  hf:   " + escape(expected)
                            + "\n  mine: " + escape(actual));
            }
        }
        assertNoMismatch(name, mismatches, idLists.size() * 2);
    }

    /**
     * Every assigned code point of planes 0, 1 and the start of 14, and every 61st code point
     * besides, 256 per string: run together for byte-level BPE (NFC reordering, pattern classes),
     * as words "aX " for BERT (punctuation, control and accent classes). These catch the
     * Unicode-version effects.
     */
    @ParameterizedTest
    @CsvSource({"gpt-neox-20b, '%s'", "bge-small-en-v1.5, 'a%s '"})
    void everyCodePointMatchesHf(String name, String format) {
        Pair p = pair(name);
        List<Integer> codePoints = new ArrayList<>();
        for (int cp = 0; cp < 0x110000; cp++) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            boolean dense = cp < 0x20000 || (cp >= 0xE0000 && cp < 0xE0200);
            if (dense && Character.getType(cp) != Character.UNASSIGNED || cp % 61 == 0) codePoints.add(cp);
        }
        List<String> mismatches = new ArrayList<>();
        for (int from = 0; from < codePoints.size(); from += 256) {
            StringBuilder text = new StringBuilder();
            for (int cp : codePoints.subList(from, Math.min(from + 256, codePoints.size())))
                text.append(format.formatted(Character.toString(cp)));
            String s = text.toString();
            if (!Arrays.equals(p.hf().encode(s, false), p.mine().encode(s, false)))
                mismatches.add(String.format("code points from U+%04X", codePoints.get(from)));
        }
        assertNoMismatch(name, mismatches, codePoints.size() / 256);
    }

    /** A text of more than 512 tokens: neither side may truncate (DJL would, at 512, by default). */
    @ParameterizedTest
    @ValueSource(strings = {"gpt-neox-20b", "all-minilm-l6-v2"})
    void longInputIsNotTruncated(String name) {
        Pair p = pair(name);
        String stories = TestTexts.real(0).getFirst();
        int[] expected = p.hf().encode(stories, true);
        assertTrue(expected.length > 512, "reference was truncated or text too short: " + expected.length);
        assertEquals(Arrays.toString(expected), Arrays.toString(p.mine().encode(stories, true)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"all-minilm-l6-v2", "bge-small-en-v1.5", "e5-small-v2"})
    void bertVocabularyAndSpecialTokens(String name) {
        Tokenizer bert = pair(name).mine();
        assertEquals(30522, bert.vocabSize());
        var special = bert.specialTokens();
        assertEquals(OptionalInt.of(101), special.cls());
        assertEquals(OptionalInt.of(102), special.sep());
        assertEquals(OptionalInt.of(0), special.pad());
        assertEquals(OptionalInt.of(100), special.unk());
        assertEquals(OptionalInt.empty(), special.bos());
        assertEquals(OptionalInt.empty(), special.eos());
        assertEquals(OptionalInt.of(103), bert.tokenId("[MASK]"));
        assertEquals("##ing", bert.token(2075));
    }

    private static void assertNoMismatch(String name, List<String> mismatches, int cases) {
        assertTrue(mismatches.isEmpty(), name + ": " + mismatches.size() + " of " + cases + " cases differ from HF, e.g.\n"
                + String.join("\n", mismatches.subList(0, Math.min(5, mismatches.size()))));
    }

    static String escape(String s) {
        StringBuilder out = new StringBuilder("\"");
        s.codePoints().forEach(cp -> {
            if (cp >= 0x20 && cp < 0x7F) out.appendCodePoint(cp);
            else out.append(String.format("\\u{%X}", cp));
        });
        return out.append('"').toString();
    }
}
