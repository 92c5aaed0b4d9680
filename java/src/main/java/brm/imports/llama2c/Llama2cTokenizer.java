package brm.imports.llama2c;

import brm.BrmException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's tokenizer.bin as a Hugging Face tokenizer.json that encodes exactly as llama2.c does.
 *
 * File: int32 max_token_length, then per token {float32 score, int32 length, UTF-8 bytes}; the token
 * count is the checkpoint's vocab_size. llama2.c's export writes a SentencePiece BPE model with
 * ids 0 = unk, 1 = BOS ("\n<s>\n"), 2 = EOS ("\n</s>\n"), 3..258 = byte tokens "<0x00>".."<0xFF>",
 * and "▁" (U+2581) replaced by a space in every piece.
 *
 * llama2.c's encode: a dummy-prefix " " token when the text is non-empty, then each code point's
 * token, else its UTF-8 bytes as byte tokens (id = byte + 3); then, repeatedly, merge the adjacent
 * pair whose concatenation is a token of the highest score (the leftmost among equal scores).
 *
 * The HF form is what transformers' LlamaConverter writes for a SentencePiece BPE model:
 * - spaces: pieces get their "▁" back (' ' → '▁', the inverse of llama2.c's export), and the
 *   normalizer Prepend("▁") + Replace(" ", "▁") is the dummy prefix plus the same mapping of the text;
 *   no pre-tokenizer, so the whole text is one word, as in llama2.c;
 * - BPE with byte_fallback: an unknown code point becomes its "<0xXX>" byte tokens;
 * - merges: every split l + r of a piece into two pieces, ranked as HF's generate_merges ranks them:
 *   the merged piece's score descending, then longer l, longer r, then merged id, l id, r id. The
 *   lowest-ranked present pair is then llama2.c's highest-score pair;
 * - ids 0, 1, 2 become the special tokens "<unk>", "<s>", "</s>"; TemplateProcessing prepends "<s>".
 * Two inputs encode differently, as with any HF Llama tokenizer: a literal "▁" in the text reads as a
 * space (llama2.c byte-encodes it), and a literal "<unk>", "<s>" or "</s>" is the special token. In
 * principle also where two different splits of one piece are both present (as "ab","a","ba" for a piece
 * "aba"): llama2.c merges the leftmost first, HF the better-ranked split, which can change later merges.
 */
public final class Llama2cTokenizer {
    public static final int UNK = 0, BOS = 1, EOS = 2;
    static final String[] SPECIAL = {"<unk>", "<s>", "</s>"};
    private static final int FIRST_BYTE_TOKEN = 3, BYTE_TOKENS = 256;
    private static final String SPACE = "▁";

    private Llama2cTokenizer() {}

    /** One vocabulary entry in HF form ("▁" for spaces, specials renamed) with its llama2.c score. */
    record Token(String text, float score) {}

    /** The {@code vocabSize} tokens of {@code bytes}, the whole of {@code file}, checked, in HF form. */
    static List<Token> read(Path file, byte[] bytes, int vocabSize) {
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (in.remaining() < Integer.BYTES)
            throw new BrmException(file + ": truncated llama2.c tokenizer: " + bytes.length + " bytes, no max_token_length");
        int maxLength = in.getInt();
        if (maxLength <= 0) throw new BrmException(file + ": bad llama2.c tokenizer: max_token_length is " + maxLength);
        var utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        List<Token> tokens = new ArrayList<>();
        Map<String, Integer> ids = new HashMap<>();
        while (in.hasRemaining()) {
            int id = tokens.size();
            if (in.remaining() < 2 * Integer.BYTES)
                throw new BrmException(file + ": truncated llama2.c tokenizer: token " + id + " has no score and length");
            float score = in.getFloat();
            int length = in.getInt();
            if (Float.isNaN(score)) throw new BrmException(file + ": token " + id + " has score NaN");
            if (length <= 0 || length > maxLength)
                throw new BrmException(file + ": token " + id + " has length " + length + ", outside 1.." + maxLength + " (max_token_length)");
            if (in.remaining() < length)
                throw new BrmException(file + ": truncated llama2.c tokenizer: token " + id + " needs " + length + " bytes, " + in.remaining() + " left");
            String raw;
            try {
                raw = utf8.decode(in.slice(in.position(), length)).toString();
            } catch (CharacterCodingException e) {
                throw new BrmException(file + ": token " + id + " is not valid UTF-8");
            }
            in.position(in.position() + length);
            String text = huggingFaceText(file, id, raw);
            Integer previous = ids.putIfAbsent(text, id);
            if (previous != null)
                throw new BrmException(file + ": tokens " + previous + " and " + id + " are both \"" + text + "\" (with ▁ for spaces)");
            tokens.add(new Token(text, score));
        }
        if (tokens.size() != vocabSize)
            throw new BrmException(file + ": holds " + tokens.size() + " tokens but the checkpoint's vocab_size is " + vocabSize);
        if (vocabSize < FIRST_BYTE_TOKEN + BYTE_TOKENS)
            throw new BrmException(file + ": holds " + vocabSize + " tokens; llama2.c's byte fallback needs ids 0.." + (FIRST_BYTE_TOKEN + BYTE_TOKENS - 1));
        return tokens;
    }

    /** Token {@code id}'s piece as the HF vocabulary holds it. */
    private static String huggingFaceText(Path file, int id, String raw) {
        if (id < SPECIAL.length) return SPECIAL[id];
        if (id < FIRST_BYTE_TOKEN + BYTE_TOKENS) {
            String expected = byteToken(id - FIRST_BYTE_TOKEN);
            if (!raw.equals(expected))
                throw new BrmException(file + ": token " + id + " is \"" + raw + "\", not " + expected + " (llama2.c's byte fallback uses id = byte + 3)");
            return raw;
        }
        if (raw.contains(SPACE))
            throw new BrmException(file + ": token " + id + " contains ▁ (U+2581), which the HF form uses for spaces");
        return raw.replace(" ", SPACE);
    }

    /** How HF's byte fallback names a byte: "<0x0A>". */
    private static String byteToken(int b) {
        return String.format("<0x%02X>", b);
    }

    /** tokenizer.json: see the class comment. */
    static ObjectNode tokenizerJson(List<Token> tokens) {
        JsonNodeFactory json = JsonNodeFactory.instance;
        ObjectNode root = json.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < SPECIAL.length; id++) {
            ObjectNode t = added.addObject();
            t.put("id", id);
            t.put("content", SPECIAL[id]);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        }
        ObjectNode normalizer = root.putObject("normalizer");
        normalizer.put("type", "Sequence");
        ArrayNode normalizers = normalizer.putArray("normalizers");
        normalizers.addObject().put("type", "Prepend").put("prepend", SPACE);
        replace(normalizers.addObject(), " ", SPACE);
        root.putNull("pre_tokenizer");
        root.set("post_processor", prependBos());
        ObjectNode decoder = root.putObject("decoder");
        decoder.put("type", "Sequence");
        ArrayNode decoders = decoder.putArray("decoders");
        replace(decoders.addObject(), SPACE, " ");
        decoders.addObject().put("type", "ByteFallback");
        decoders.addObject().put("type", "Fuse");
        decoders.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", SPECIAL[UNK]);
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        for (int id = 0; id < tokens.size(); id++) vocab.put(tokens.get(id).text(), id);
        ArrayNode merges = model.putArray("merges");
        for (Merge m : merges(tokens)) merges.addArray().add(tokens.get(m.left()).text()).add(tokens.get(m.right()).text());
        return root;
    }

    private static void replace(ObjectNode node, String pattern, String content) {
        node.put("type", "Replace");
        node.putObject("pattern").put("String", pattern);
        node.put("content", content);
    }

    /** TemplateProcessing: "<s> A" for one sequence, "<s> A <s> B" for a pair (as HF's Llama). */
    private static ObjectNode prependBos() {
        ObjectNode p = JsonNodeFactory.instance.objectNode();
        p.put("type", "TemplateProcessing");
        ArrayNode single = p.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", SPECIAL[BOS]).put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = p.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", SPECIAL[BOS]).put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", SPECIAL[BOS]).put("type_id", 1);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode bos = p.putObject("special_tokens").putObject(SPECIAL[BOS]);
        bos.put("id", SPECIAL[BOS]);
        bos.putArray("ids").add(BOS);
        bos.putArray("tokens").add(SPECIAL[BOS]);
        return p;
    }

    /** left + right = merged, all token ids; score is the merged token's. */
    record Merge(int left, int right, int merged, float score, int leftLength, int rightLength) {}

    /**
     * Every split of a non-special token into two non-special tokens, in rank order (see the class
     * comment). Lengths count code points, as Python's len does; "+ 0.0f" folds −0.0 into 0.0, which
     * llama2.c's score comparison treats as equal.
     */
    static List<Merge> merges(List<Token> tokens) {
        Map<String, Integer> ids = new HashMap<>();
        for (int id = SPECIAL.length; id < tokens.size(); id++) ids.put(tokens.get(id).text(), id);
        List<Merge> merges = new ArrayList<>();
        for (int merged = SPECIAL.length; merged < tokens.size(); merged++) {
            String text = tokens.get(merged).text();
            int codePoints = text.codePointCount(0, text.length());
            for (int k = 1; k < codePoints; k++) {
                int cut = text.offsetByCodePoints(0, k);
                Integer left = ids.get(text.substring(0, cut)), right = ids.get(text.substring(cut));
                if (left != null && right != null)
                    merges.add(new Merge(left, right, merged, tokens.get(merged).score() + 0.0f, k, codePoints - k));
            }
        }
        merges.sort(Comparator.comparingDouble(Merge::score).reversed()
                .thenComparing(Comparator.comparingInt(Merge::leftLength).reversed())
                .thenComparing(Comparator.comparingInt(Merge::rightLength).reversed())
                .thenComparingInt(Merge::merged).thenComparingInt(Merge::left).thenComparingInt(Merge::right));
        return merges;
    }

    /**
     * tokenizer_config.json as transformers saves it for Llama. "legacy": true is transformers' name for
     * the layout above (the "▁" prefix comes from the normalizer, so it also follows special tokens).
     */
    static ObjectNode tokenizerConfig(int modelMaxLength) {
        ObjectNode c = JsonNodeFactory.instance.objectNode();
        c.put("add_bos_token", true);
        c.put("add_eos_token", false);
        ObjectNode decoder = c.putObject("added_tokens_decoder");
        for (int id = 0; id < SPECIAL.length; id++) {
            ObjectNode t = decoder.putObject(Integer.toString(id));
            addedToken(t, SPECIAL[id]);
            t.put("special", true);
        }
        c.put("bos_token", SPECIAL[BOS]);
        c.put("clean_up_tokenization_spaces", false);
        c.put("eos_token", SPECIAL[EOS]);
        c.put("legacy", true);
        c.put("model_max_length", modelMaxLength);
        c.putNull("pad_token");
        c.putObject("sp_model_kwargs");
        c.put("tokenizer_class", "LlamaTokenizer");
        c.put("unk_token", SPECIAL[UNK]);
        c.put("use_default_system_prompt", false);
        return c;
    }

    /** special_tokens_map.json as transformers saves it for Llama. */
    static ObjectNode specialTokensMap() {
        ObjectNode m = JsonNodeFactory.instance.objectNode();
        addedToken(m.putObject("bos_token"), SPECIAL[BOS]);
        addedToken(m.putObject("eos_token"), SPECIAL[EOS]);
        addedToken(m.putObject("unk_token"), SPECIAL[UNK]);
        return m;
    }

    private static void addedToken(ObjectNode t, String content) {
        t.put("content", content);
        t.put("lstrip", false);
        t.put("normalized", false);
        t.put("rstrip", false);
        t.put("single_word", false);
    }
}
