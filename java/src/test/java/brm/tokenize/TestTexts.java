package brm.tokenize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Test inputs: a hand list of hard cases, seeded random strings, and real text from shared/data. */
final class TestTexts {
    private TestTexts() {}

    /** ../shared/data, found by walking up from the working directory (CI has it too). */
    static Path sharedData() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path data = dir.resolve("shared").resolve("data");
            if (Files.isDirectory(data)) return data;
        }
        throw new IllegalStateException("no shared/data above " + Path.of("").toAbsolutePath());
    }

    static final List<String> HAND = List.of(
            "", " ", "  ", "   ", "\t", "\n", "\r\n", " \n ", "\n\n\n", "a", " a", "a ", "  a  ", "\ta\t",
            "Hello world!", "Hello world!  Pythia-70M uses GPT-NeoX's tokenizer.\n",
            "Below is an instruction that describes a task.",
            "I'm can't won't y'all we'll they'd she's it'S 'tis ''quoted'' rock'n'roll",
            "   leading spaces", "trailing spaces   ", "mixed \t \n tabs\t\tand\n\nnewlines \r\n\r\n end",
            "runs:  two   three    four     five      six       seven        eight",
            "x                                                  fifty spaces",
            "1234567890 3.14159 1,000,000 2024-01-01 0x1F 1e-9 -42 +7 99%",
            "!!! ??? ... ,,, ;;; ::: --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>> ||| ~~~ ```",
            "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", " <|endoftext|> ", "<|padding|>x",
            "[CLS]", "[SEP]", "[CLS] hello [SEP] world [SEP]", "[PAD][UNK][MASK]", "x[MASK]y", "[sep] [Sep]",
            "<s>", "</s>", "<s> hi </s>", "<unk>",
            "café naïve résumé façade Ångström Zürich señor crème brûlée",
            "e\u0301 a\u0300 o\u0308 n\u0303 combining: \u0301\u0301\u0301",
            "ÉCOLE ÎLE ÇA Œuvre ß ẞ İstanbul ΣΊΣΥΦΟΣ Ωμέγα",
            "日本語のテキストです。東京は大きい。", "中文文本，包含标点符号！", "한국어 텍스트입니다", "ひらがな カタカナ",
            "😀 😃 😄 👍🏽 👨‍👩‍👧‍👦 🇯🇵 ❤️ 🥲 🫠", "emoji🙂inside🙃words",
            "مرحبا بالعالم", "שלום עולם", "mixed English and العربية text",
            "हिन्दी पाठ", "ภาษาไทย", "Ελληνικά", "Русский текст", "Tiếng Việt có dấu",
            "\u00a0nbsp\u00a0here\u2003em\u3000ideo\u2028line\u2029para\u0085nel\u000bvt\u000cff",
            "zero\u200bwidth\u200cjoin\u200dchars\ufeffbom", "soft\u00adhyphen", "ctrl\u0001\u0002\u001f\u007fchars",
            "\ufffd replacement \u0000 nul", "private\ue000use", "fullwidth ＡＢＣ１２３！",
            "ﬁ ligature ﬀ ﬃ Ⅻ ① ² ½", "math 𝐀𝐁𝐂 𝔸𝔹 ∑∫√∞≠≤", "a\ud83d\ude00b",
            "https://example.com/path?query=1&x=y#frag user@example.org",
            "def f(x):\n    return x * 2  # comment\n\n\tif x == 1: pass",
            "{\"json\": [1, 2, 3], \"k\": null}",
            "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
            "a".repeat(150), "ab".repeat(120), "x".repeat(99) + " " + "y".repeat(100) + " " + "z".repeat(101),
            "lowercase_snake_case camelCaseWords PascalCase kebab-case SCREAMING_CASE",
            "### Instruction:\nWrite a poem.\n\n### Response:\n");

    private static final String[] POOL_ASCII_WORDS = {"the", "The", "quick", "brown", "fox", "jumps", "over", "lazy",
            "dog", "tokenizer", "GPT", "NeoX", "Pythia", "reward", "model", "Bayesian", "LoRA", "a", "I", "x"};
    private static final String[] POOL_PIECES = {" ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000",
            ".", ",", "!", "?", "'", "\"", "'s", "'ll", "'re", "'ve", "'m", "'d", "'t", "-", "_", "(", ")", "$", "%", "#",
            "0", "7", "42", "2024", "3.5", "½", "²", "é", "e\u0301", "ü", "ß", "İ", "Σ", "ñ", "東", "京", "語", "한", "ア",
            "😀", "👍🏽", "‍", "🥲", "ع", "ש", "ह", "ि", "ไ", "\u200b", "\u00ad", "\u0007", "\ufeff",
            "<|endoftext|>", "<|padding|>", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "<s>", "</s>", "<unk>", "▁"};

    /** count random strings from a fixed seed: words, whitespace runs, punctuation, unicode, special tokens. */
    static List<String> random(long seed, int count) {
        Random rng = new Random(seed);
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            StringBuilder s = new StringBuilder();
            int parts = rng.nextInt(40);
            for (int p = 0; p < parts; p++) {
                int kind = rng.nextInt(10);
                if (kind < 4) s.append(POOL_ASCII_WORDS[rng.nextInt(POOL_ASCII_WORDS.length)]);
                else if (kind < 8) s.append(POOL_PIECES[rng.nextInt(POOL_PIECES.length)]);
                else if (kind < 9) s.append(" ".repeat(1 + rng.nextInt(30)));
                else s.appendCodePoint(randomCodePoint(rng));
            }
            out.add(s.toString());
        }
        return out;
    }

    /** A valid scalar value, mostly from the BMP. */
    static int randomCodePoint(Random rng) {
        while (true) {
            int cp = rng.nextInt(4) == 0 ? rng.nextInt(0x110000) : rng.nextInt(0x10000);
            if (cp < 0xD800 || cp > 0xDFFF) return cp;
        }
    }

    /** Real text: AlpacaFarm instructions and outputs, AlpacaEval outputs, the TinyStories sample. */
    static List<String> real(int perFile) {
        Path data = sharedData();
        List<String> out = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try {
            for (String file : List.of("alpaca-farm/outputs_sft.json", "alpaca-farm/eval_gpt-3.5-turbo-0301.json",
                    "alpaca-eval/alpaca-7b__model_outputs.json", "alpaca-eval/oasst-sft-pythia-12b__model_outputs.json")) {
                JsonNode records = json.readTree(data.resolve(file).toFile());
                for (int i = 0; i < Math.min(perFile, records.size()); i++) {
                    JsonNode r = records.get(i * (records.size() / perFile));
                    out.add(r.path("instruction").asText() + "\n\n" + r.path("input").asText());
                    out.add(r.path("output").asText());
                }
            }
            String stories = Files.readString(data.resolve("tinystories-sample/tinystories_sample.txt"));
            out.add(stories);
            out.addAll(List.of(stories.split("<\\|endoftext\\|>")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** The whole test corpus for one tokenizer. */
    static List<String> corpus() {
        List<String> all = new ArrayList<>(HAND);
        all.addAll(random(20240611L, 250));
        all.addAll(real(25));
        return all;
    }
}
