package brm.tokenize;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hand-written tokenizer.json files for the components the real files above do not use, each
 * checked against HF (via DJL): SentencePiece-style BPE with byte fallback (Prepend + Replace
 * normalizer, decoder Replace/ByteFallback/Fuse/Strip, "<s> $A" template, the shape llama2.c's
 * tok512 will be imported in), Metaspace pre-tokenizer and decoder (prepend "first", legacy
 * add_prefix_space, no split), added tokens with lstrip / rstrip / single_word / normalized,
 * unk with and without fusing, BPE with continuing_subword_prefix, end_of_word_suffix and
 * ignore_merges behind a BERT pre-tokenizer, without a decoder, and an untyped byte-level BPE
 * model with [left, right] merges, prefix space without the pattern, a Sequence post-processor
 * and added tokens beyond the vocab (ids from HF's rule).
 */
class FixtureParityTest {
    @TempDir
    static Path dir;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, Tokenizer> MINE = new HashMap<>();
    private static final Map<String, HfReference> HF = new HashMap<>();
    private static final List<String> CORPUS = corpus();

    /** Common English merges, best first; "▁" is SentencePiece's space. */
    private static final List<String> SP_MERGES = List.of("▁ t", "h e", "▁t he", "i n", "▁ a", "e r", "o n", "▁ s",
            "r e", "a n", "o u", "▁ w", "e n", "i s", "▁ b", "a t", "▁ o", "▁ h", "e d", "n d", "▁a nd", "i t", "▁ c",
            "o r", "▁ f", "e s", "▁ m", "a r", "t o", "▁ to", "l l", "n g", "in g", "▁ d", "▁ l", "o m", "▁ p", "a y",
            "▁ I", "▁ S", "▁ T", "O n", "▁ On", "c e", "▁T he", "l e", "v e", "▁ y", "o w", "u t", "▁w as", "▁ was",
            "▁ ▁", "▁▁ ▁▁", "▁ n", "▁n ame", "a m", "am e", "L i", "Li l", "Lil y", "▁ Lily", "▁ g", "▁g ir", "i r",
            "ir l", "▁gir l", "▁ 1", "1 2", "▁1 2", ". .", ".. .", "' s", "é t", "▁ é");

    /** The same, for a BPE with "##" continuations and a "</w>" end of word. */
    private static final List<String> SUFFIX_MERGES = List.of("t ##h", "th ##e</w>", "a ##n", "an ##d</w>",
            "##i ##n", "##in ##g</w>", "##e ##r</w>", "o ##n</w>", "i ##s</w>", "w ##a", "wa ##s</w>", "##e ##d</w>",
            "t ##o</w>", "h ##e</w>", "##l ##l", "##ll ##y</w>", "l ##i", "li ##l", "lil ##y</w>");

    private static ObjectNode fixture(String name) {
        ObjectNode root = JSON.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ObjectNode model = root.putObject("model").put("type", "BPE");
        model.putNull("dropout");
        switch (name) {
            case "sentencepiece-byte-fallback" -> {
                bpe(model, SP_MERGES, "", "", true).put("unk_token", "<unk>").put("fuse_unk", true).put("byte_fallback", true);
                addedTokens(root, "<unk>", "<s>", "</s>");
                root.putObject("normalizer").put("type", "Sequence").putArray("normalizers")
                        .add(JSON.createObjectNode().put("type", "Prepend").put("prepend", "▁"))
                        .add(replace(" ", "▁"));
                root.putNull("pre_tokenizer");
                ArrayNode single = root.putObject("post_processor").put("type", "TemplateProcessing").putArray("single");
                single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
                single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
                root.withObject("/post_processor").putArray("pair");
                root.withObject("/post_processor").putObject("special_tokens").putObject("<s>").put("id", "<s>")
                        .<ObjectNode>set("ids", JSON.createArrayNode().add(1))
                        .set("tokens", JSON.createArrayNode().add("<s>"));
                root.putObject("decoder").put("type", "Sequence").putArray("decoders")
                        .add(replace("▁", " "))
                        .add(JSON.createObjectNode().put("type", "ByteFallback"))
                        .add(JSON.createObjectNode().put("type", "Fuse"))
                        .add(JSON.createObjectNode().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0));
            }
            case "metaspace-first" -> {
                bpe(model, SP_MERGES, "", "", true).put("unk_token", "<unk>").put("fuse_unk", false);
                ArrayNode added = addedTokens(root, "<unk>", "<s>", "</s>");
                added.addObject().put("id", 1000).put("content", "<mask>").put("single_word", false).put("lstrip", true)
                        .put("rstrip", false).put("normalized", false).put("special", true);
                added.addObject().put("id", 1001).put("content", "[X]").put("single_word", false).put("lstrip", false)
                        .put("rstrip", true).put("normalized", false).put("special", true);
                added.addObject().put("id", 1002).put("content", "fox").put("single_word", true).put("lstrip", false)
                        .put("rstrip", false).put("normalized", true).put("special", false);
                added.addObject().put("id", 1003).put("content", "▁quick").put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", true).put("special", false);
                root.putObject("normalizer").put("type", "NFKD");
                root.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "▁")
                        .put("prepend_scheme", "first").put("split", true);
                root.putObject("post_processor").put("type", "BertProcessing")
                        .<ObjectNode>set("sep", JSON.createArrayNode().add("</s>").add(2))
                        .set("cls", JSON.createArrayNode().add("<s>").add(1));
                root.putObject("decoder").put("type", "Metaspace").put("replacement", "▁")
                        .put("prepend_scheme", "first").put("split", true);
            }
            case "metaspace-legacy" -> {
                bpe(model, SP_MERGES, "", "", true).put("byte_fallback", true);
                addedTokens(root, "<unk>", "<s>", "</s>");
                root.putObject("normalizer").put("type", "NFKC");
                root.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers")
                        .addObject().put("type", "Metaspace").put("replacement", "▁").put("add_prefix_space", true);
                root.putObject("post_processor").put("type", "RobertaProcessing").put("trim_offsets", true)
                        .put("add_prefix_space", true)
                        .<ObjectNode>set("sep", JSON.createArrayNode().add("</s>").add(2))
                        .set("cls", JSON.createArrayNode().add("<s>").add(1));
                root.putObject("decoder").put("type", "Sequence").putArray("decoders")
                        .add(JSON.createObjectNode().put("type", "ByteFallback"))
                        .add(JSON.createObjectNode().put("type", "Metaspace").put("replacement", "▁").put("add_prefix_space", true));
            }
            case "bpe-suffix" -> {
                bpe(model, SUFFIX_MERGES, "##", "</w>", false).put("unk_token", "[UNK]").put("fuse_unk", true)
                        .put("continuing_subword_prefix", "##").put("end_of_word_suffix", "</w>").put("ignore_merges", true);
                addedTokens(root, "[UNK]", "[CLS]", "[SEP]");
                root.putObject("normalizer").put("type", "Sequence").putArray("normalizers")
                        .add(JSON.createObjectNode().put("type", "NFD"))
                        .add(JSON.createObjectNode().put("type", "Lowercase"));
                root.putObject("pre_tokenizer").put("type", "BertPreTokenizer");
                root.putNull("post_processor");
                root.putNull("decoder");
            }
            case "bytelevel-untyped" -> {
                model.remove("type");
                ArrayNode merges = model.putArray("merges");
                ObjectNode vocab = model.putObject("vocab");
                for (int b = 0; b < 256; b++) vocab.put(String.valueOf(ByteLevel.BYTE_TO_CHAR[b]), b);
                for (String merge : SP_MERGES) {
                    String[] pair = merge.replace('▁', 'Ġ').replace("é", "Ã©").split(" ");
                    for (String piece : List.of(pair[0], pair[1], pair[0] + pair[1]))
                        if (!vocab.has(piece)) vocab.put(piece, vocab.size());
                    merges.addArray().add(pair[0]).add(pair[1]);
                }
                List<String> specials = List.of("<|bos|>", "<|eos|>");
                int firstNew = vocab.size(); // HF numbers added tokens missing from the vocab from its size on
                ArrayNode added = root.putArray("added_tokens");
                for (int i = 0; i < specials.size(); i++)
                    added.addObject().put("id", firstNew + i).put("content", specials.get(i)).put("single_word", false)
                            .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
                root.putNull("normalizer");
                root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", true)
                        .put("trim_offsets", true).put("use_regex", false);
                ObjectNode template = JSON.createObjectNode().put("type", "TemplateProcessing");
                ArrayNode single = template.putArray("single");
                single.addObject().putObject("SpecialToken").put("id", "<|bos|>").put("type_id", 0);
                single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
                single.addObject().putObject("SpecialToken").put("id", "<|eos|>").put("type_id", 0);
                template.putArray("pair");
                for (int i = 0; i < specials.size(); i++)
                    template.withObject("/special_tokens").putObject(specials.get(i)).put("id", specials.get(i))
                            .<ObjectNode>set("ids", JSON.createArrayNode().add(firstNew + i))
                            .set("tokens", JSON.createArrayNode().add(specials.get(i)));
                root.putObject("post_processor").put("type", "Sequence").putArray("processors")
                        .add(JSON.createObjectNode().put("type", "ByteLevel").put("add_prefix_space", true)
                                .put("trim_offsets", true).put("use_regex", false))
                        .add(template);
                root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true)
                        .put("trim_offsets", true).put("use_regex", false);
            }
            default -> throw new IllegalArgumentException(name);
        }
        return root;
    }

    private static ObjectNode replace(String pattern, String content) {
        ObjectNode node = JSON.createObjectNode().put("type", "Replace");
        node.putObject("pattern").put("String", pattern);
        return node.put("content", content);
    }

    /** Three special tokens at ids 0, 1, 2 (also the first vocab entries). */
    private static ArrayNode addedTokens(ObjectNode root, String... specials) {
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < specials.length; i++)
            added.addObject().put("id", i).put("content", specials[i]).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        return added;
    }

    /**
     * vocab = the specials, 256 byte tokens (with byteTokens), every printable ASCII char and
     * "▁é" in its plain / prefixed / suffixed forms, then each merge's pieces and result in order.
     */
    private static ObjectNode bpe(ObjectNode model, List<String> merges, String prefix, String suffix, boolean byteTokens) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String special : List.of(byteTokens ? "<unk>" : "[UNK]", byteTokens ? "<s>" : "[CLS]", byteTokens ? "</s>" : "[SEP]"))
            vocab.put(special, vocab.size());
        if (byteTokens) for (int b = 0; b < 256; b++) vocab.put(String.format("<0x%02X>", b), vocab.size());
        StringBuilder chars = new StringBuilder("▁é");
        for (char c = '!'; c <= '~'; c++) chars.append(c);
        chars.codePoints().forEach(cp -> {
            String c = Character.toString(cp);
            for (String piece : List.of(c, prefix + c, c + suffix, prefix + c + suffix)) vocab.putIfAbsent(piece, vocab.size());
        });
        ArrayNode mergeArray = model.putArray("merges");
        for (String merge : merges) {
            String[] pair = merge.split(" ");
            for (String piece : List.of(pair[0], pair[1], pair[0] + pair[1].substring(prefix.length())))
                vocab.putIfAbsent(piece, vocab.size());
            mergeArray.add(merge);
        }
        ObjectNode vocabNode = model.putObject("vocab");
        vocab.forEach(vocabNode::put);
        return model;
    }

    private static void load(String name) {
        if (MINE.containsKey(name)) return;
        Path file = dir.resolve(name + ".json");
        try {
            JSON.writeValue(file.toFile(), fixture(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        MINE.put(name, Tokenizer.load(file));
        HF.put(name, HfReference.load(file));
    }

    @AfterAll
    static void closeReferences() {
        HF.values().forEach(HfReference::close);
    }

    private static List<String> corpus() {
        List<String> all = new ArrayList<>(TestTexts.HAND);
        all.addAll(TestTexts.random(99L, 150));
        all.addAll(TestTexts.real(5));
        all.addAll(List.of("the fox", "a fox.", "foxes fox_ _fox", "x <mask> y", "x   <mask>", "[X]   y", "[X]",
                "<mask>[X]<mask>", "the quick fox", "thequick", "▁quick", "Lily was 12.", "été ▁▁ ▁", "  "));
        return all;
    }

    @Test
    void roleTokensOfTheSentencePieceFixture() {
        load("sentencepiece-byte-fallback");
        var special = MINE.get("sentencepiece-byte-fallback").specialTokens();
        assertEquals(OptionalInt.of(1), special.bos());
        assertEquals(OptionalInt.of(2), special.eos());
        assertEquals(OptionalInt.of(0), special.unk());
        assertEquals(OptionalInt.empty(), special.pad());
        assertEquals(OptionalInt.empty(), special.cls(), "a template that only prefixes is no [CLS] ... [SEP] wrap");
    }

    @ParameterizedTest
    @ValueSource(strings = {"sentencepiece-byte-fallback", "metaspace-first", "metaspace-legacy", "bpe-suffix",
            "bytelevel-untyped"})
    void encodeAndDecodeMatchHf(String name) {
        load(name);
        Tokenizer mine = MINE.get(name);
        HfReference hf = HF.get(name);
        List<String> mismatches = new ArrayList<>();
        for (String text : CORPUS) {
            for (boolean special : new boolean[]{false, true}) {
                int[] expected = hf.encode(text, special), actual = mine.encode(text, special);
                if (!Arrays.equals(expected, actual))
                    mismatches.add("encode " + TokenizerParityTest.escape(text) + " special=" + special + "\n  hf:   "
                            + Arrays.toString(expected) + "\n  mine: " + Arrays.toString(actual));
                String decodedHf = hf.decode(expected, !special), decodedMine = mine.decode(expected, !special);
                if (!decodedHf.equals(decodedMine))
                    mismatches.add("decode " + Arrays.toString(expected) + "\n  hf:   "
                            + TokenizerParityTest.escape(decodedHf) + "\n  mine: " + TokenizerParityTest.escape(decodedMine));
            }
        }
        Random rng = new Random(3);
        for (int i = 0; i < 300; i++) {
            int[] ids = rng.ints(rng.nextInt(12), 0, mine.vocabSize() + 3).toArray();
            String decodedHf = hf.decode(ids, i % 2 == 0), decodedMine = mine.decode(ids, i % 2 == 0);
            if (!decodedHf.equals(decodedMine))
                mismatches.add("decode " + Arrays.toString(ids) + "\n  hf:   " + TokenizerParityTest.escape(decodedHf)
                        + "\n  mine: " + TokenizerParityTest.escape(decodedMine));
        }
        assertTrue(mismatches.isEmpty(), name + ": " + mismatches.size() + " differences from HF, e.g.\n"
                + String.join("\n", mismatches.subList(0, Math.min(6, mismatches.size()))));
    }
}
