package brm.tokenize;

import brm.BrmException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Builds a {@link Tokenizer} from a Hugging Face tokenizer.json, with the library's defaults for
 * absent fields. Supported: models BPE and WordPiece; normalizers NFC/NFD/NFKC/NFKD, Lowercase,
 * BertNormalizer, Prepend, Replace (literal), Sequence; pre-tokenizers ByteLevel, BertPreTokenizer,
 * Metaspace, Sequence; post-processors ByteLevel, TemplateProcessing, BertProcessing,
 * RobertaProcessing, Sequence; decoders ByteLevel, WordPiece, Metaspace, Replace (literal),
 * ByteFallback, Fuse, Strip, Sequence. Anything else fails with the file and component named.
 */
final class TokenizerJson {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Path path;

    private TokenizerJson(Path path) {
        this.path = path;
    }

    static Tokenizer load(Path path) {
        JsonNode root;
        try (var in = Files.newInputStream(path)) {
            root = MAPPER.readTree(in);
        } catch (NoSuchFileException e) {
            throw new BrmException(path + ": tokenizer file not found");
        } catch (JsonProcessingException e) {
            throw new BrmException(path + ": malformed JSON: " + e.getOriginalMessage().lines().findFirst().orElse(""));
        } catch (IOException e) {
            throw new BrmException(path + ": cannot read tokenizer file: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new BrmException(path + ": malformed JSON: not a JSON object");
        try {
            return new TokenizerJson(path).build(root);
        } catch (IllegalArgumentException e) {
            throw new BrmException(path + ": " + e.getMessage(), e);
        }
    }

    private Tokenizer build(JsonNode root) {
        TextNormalizer normalizer = optional(root.get("normalizer"), this::normalizer);
        PreTokenizer preTokenizer = optional(root.get("pre_tokenizer"), this::preTokenizer);
        TokenModel model = model(required(root, "model"));
        Tokenizer.Template template = root.hasNonNull("post_processor") ? template(root.get("post_processor"))
                : Tokenizer.Template.NONE;
        Decoder decoder = optional(root.get("decoder"), this::decoder);

        List<AddedVocabulary.AddedToken> addedTokens = new ArrayList<>();
        for (JsonNode token : root.path("added_tokens")) {
            addedTokens.add(new AddedVocabulary.AddedToken(text(token, "content"), flag(token, "single_word", false),
                    flag(token, "lstrip", false), flag(token, "rstrip", false), flag(token, "normalized", true),
                    flag(token, "special", false)));
        }
        AddedVocabulary added = new AddedVocabulary(addedTokens, model, normalizer);

        String paddingToken = root.path("padding").hasNonNull("pad_token") ? root.path("padding").get("pad_token").asText()
                : null;
        return new Tokenizer(path, added, normalizer, preTokenizer, model, template, decoder, paddingToken);
    }

    private TextNormalizer normalizer(JsonNode node) {
        String type = type(node, "normalizer");
        return switch (type) {
            case "NFC" -> new TextNormalizer.UnicodeForm(Normalizer.Form.NFC);
            case "NFD" -> new TextNormalizer.UnicodeForm(Normalizer.Form.NFD);
            case "NFKC" -> new TextNormalizer.UnicodeForm(Normalizer.Form.NFKC);
            case "NFKD" -> new TextNormalizer.UnicodeForm(Normalizer.Form.NFKD);
            case "Lowercase" -> new TextNormalizer.Lowercase();
            case "BertNormalizer" -> {
                boolean lowercase = flag(node, "lowercase", true);
                boolean stripAccents = node.hasNonNull("strip_accents") ? node.get("strip_accents").asBoolean() : lowercase;
                yield new TextNormalizer.Bert(flag(node, "clean_text", true), flag(node, "handle_chinese_chars", true),
                        stripAccents, lowercase);
            }
            case "Prepend" -> new TextNormalizer.Prepend(text(node, "prepend"));
            case "Replace" -> new TextNormalizer.Replace(literalPattern(node, "normalizer"), text(node, "content"));
            case "Sequence" -> new TextNormalizer.Sequence(list(required(node, "normalizers"), this::normalizer));
            default -> throw unsupported("normalizer", type);
        };
    }

    private PreTokenizer preTokenizer(JsonNode node) {
        String type = type(node, "pre_tokenizer");
        return switch (type) {
            case "ByteLevel" -> new PreTokenizer.ByteLevelSplit(flag(node, "add_prefix_space", true),
                    flag(node, "use_regex", true));
            case "BertPreTokenizer" -> new PreTokenizer.Bert();
            case "Metaspace" ->
                    new PreTokenizer.Metaspace(replacement(node), prependScheme(node), flag(node, "split", true));
            case "Sequence" -> new PreTokenizer.Sequence(list(required(node, "pretokenizers"), this::preTokenizer));
            default -> throw unsupported("pre_tokenizer", type);
        };
    }

    private TokenModel model(JsonNode node) {
        String type = node.hasNonNull("type") ? node.get("type").asText()
                : node.has("merges") ? "BPE" : node.has("max_input_chars_per_word") ? "WordPiece" : "(untyped)";
        return switch (type) {
            case "BPE" -> {
                if (node.path("dropout").asDouble(0) > 0)
                    throw unsupported("model BPE option", "dropout (random encodings)");
                List<String[]> merges = new ArrayList<>();
                for (JsonNode merge : node.path("merges")) merges.add(merge(merge));
                yield new Bpe(vocab(node), merges, optionalText(node, "unk_token"),
                        optionalText(node, "continuing_subword_prefix"), optionalText(node, "end_of_word_suffix"),
                        flag(node, "fuse_unk", false), flag(node, "byte_fallback", false),
                        flag(node, "ignore_merges", false));
            }
            case "WordPiece" -> new WordPiece(vocab(node), textOr(node, "unk_token", "[UNK]"),
                    textOr(node, "continuing_subword_prefix", "##"), node.path("max_input_chars_per_word").asInt(100));
            default -> throw unsupported("model", type);
        };
    }

    /** A merge is "left right" (exactly one space) or ["left", "right"]. */
    private static String[] merge(JsonNode merge) {
        if (merge.isArray() && merge.size() == 2) return new String[]{merge.get(0).asText(), merge.get(1).asText()};
        String[] parts = merge.asText().split(" ", -1);
        if (!merge.isTextual() || parts.length != 2) throw new IllegalArgumentException("bad BPE merge " + merge);
        return parts;
    }

    private static Map<String, Integer> vocab(JsonNode model) {
        JsonNode vocab = required(model, "vocab");
        if (!vocab.isObject()) throw new IllegalArgumentException("model.vocab is not a token → id object");
        Map<String, Integer> ids = new LinkedHashMap<>(vocab.size() * 2);
        vocab.properties().forEach(e -> ids.put(e.getKey(), e.getValue().asInt()));
        return ids;
    }

    private Tokenizer.Template template(JsonNode node) {
        String type = type(node, "post_processor");
        return switch (type) {
            case "ByteLevel" -> Tokenizer.Template.NONE;
            case "BertProcessing", "RobertaProcessing" -> new Tokenizer.Template(
                    new int[]{required(node, "cls").get(1).asInt()}, new int[]{required(node, "sep").get(1).asInt()});
            case "TemplateProcessing" -> templateProcessing(node);
            case "Sequence" -> {
                Tokenizer.Template all = Tokenizer.Template.NONE;
                for (JsonNode step : required(node, "processors")) {
                    Tokenizer.Template t = template(step);
                    all = new Tokenizer.Template(concat(t.prefix(), all.prefix()), concat(all.suffix(), t.suffix()));
                }
                yield all;
            }
            default -> throw unsupported("post_processor", type);
        };
    }

    /** The "single" template: special tokens around exactly one $A. */
    private Tokenizer.Template templateProcessing(JsonNode node) {
        List<Integer> prefix = new ArrayList<>(), suffix = new ArrayList<>();
        boolean seenA = false;
        for (JsonNode piece : required(node, "single")) {
            if (piece.has("Sequence")) {
                String id = piece.get("Sequence").path("id").asText();
                if (!id.equals("A") || seenA) throw unsupported("TemplateProcessing single template piece", "$" + id);
                seenA = true;
            } else if (piece.has("SpecialToken")) {
                String id = piece.get("SpecialToken").path("id").asText();
                JsonNode ids = node.path("special_tokens").path(id).path("ids");
                if (!ids.isArray())
                    throw new IllegalArgumentException("TemplateProcessing special token '" + id + "' is not in special_tokens");
                for (JsonNode tokenId : ids) (seenA ? suffix : prefix).add(tokenId.asInt());
            } else {
                throw unsupported("TemplateProcessing single template piece", piece.toString());
            }
        }
        if (!seenA) throw new IllegalArgumentException("TemplateProcessing single template has no $A");
        return new Tokenizer.Template(prefix.stream().mapToInt(Integer::intValue).toArray(),
                suffix.stream().mapToInt(Integer::intValue).toArray());
    }

    private Decoder decoder(JsonNode node) {
        String type = type(node, "decoder");
        return switch (type) {
            case "ByteLevel" -> new Decoder.ByteLevelBytes();
            case "WordPiece" -> new Decoder.WordPieceJoin(textOr(node, "prefix", "##"), flag(node, "cleanup", true));
            case "Metaspace" -> new Decoder.MetaspaceSpaces(replacement(node), prependScheme(node));
            case "Replace" -> new Decoder.Replace(literalPattern(node, "decoder"), text(node, "content"));
            case "ByteFallback" -> new Decoder.ByteFallback();
            case "Fuse" -> new Decoder.Fuse();
            case "Strip" ->
                    new Decoder.Strip(singleChar(node, "content"), node.path("start").asInt(0), node.path("stop").asInt(0));
            case "Sequence" -> new Decoder.Sequence(list(required(node, "decoders"), this::decoder));
            default -> throw unsupported("decoder", type);
        };
    }

    /** Metaspace's prepend_scheme, or the older add_prefix_space (false → never); default always. */
    private static PreTokenizer.PrependScheme prependScheme(JsonNode node) {
        if (!flag(node, "add_prefix_space", true)) return PreTokenizer.PrependScheme.NEVER;
        return switch (textOr(node, "prepend_scheme", "always")) {
            case "always" -> PreTokenizer.PrependScheme.ALWAYS;
            case "first" -> PreTokenizer.PrependScheme.FIRST;
            case "never" -> PreTokenizer.PrependScheme.NEVER;
            default -> throw new IllegalArgumentException("unknown Metaspace prepend_scheme " + node.get("prepend_scheme"));
        };
    }

    private static String replacement(JsonNode node) {
        return new String(Character.toChars(singleChar(node, "replacement")));
    }

    private static int singleChar(JsonNode node, String field) {
        String text = text(node, field);
        if (text.codePointCount(0, text.length()) != 1)
            throw new IllegalArgumentException(field + " must be one char, got '" + text + "'");
        return text.codePointAt(0);
    }

    /** Replace's pattern: {"String": s} is supported; {"Regex": r} would need Oniguruma semantics. */
    private String literalPattern(JsonNode node, String component) {
        JsonNode pattern = required(node, "pattern");
        if (pattern.has("String")) return pattern.get("String").asText();
        String kind = pattern.fieldNames().hasNext() ? pattern.fieldNames().next() : pattern.toString();
        throw unsupported(component + " Replace pattern", kind);
    }

    private static String type(JsonNode node, String component) {
        if (!node.hasNonNull("type")) throw new IllegalArgumentException(component + " has no type");
        return node.get("type").asText();
    }

    private BrmException unsupported(String component, String type) {
        return new BrmException(path + ": unsupported " + component + " type '" + type + "'");
    }

    private static <T> T optional(JsonNode node, Function<JsonNode, T> parse) {
        return node == null || node.isNull() ? null : parse.apply(node);
    }

    private static <T> List<T> list(JsonNode array, Function<JsonNode, T> parse) {
        List<T> out = new ArrayList<>();
        for (JsonNode item : array) out.add(parse.apply(item));
        return out;
    }

    private static JsonNode required(JsonNode node, String field) {
        if (!node.hasNonNull(field)) throw new IllegalArgumentException("missing field '" + field + "'");
        return node.get(field);
    }

    private static String text(JsonNode node, String field) {
        return required(node, field).asText();
    }

    private static String optionalText(JsonNode node, String field) {
        return node.hasNonNull(field) ? node.get(field).asText() : null;
    }

    private static String textOr(JsonNode node, String field, String fallback) {
        return node.hasNonNull(field) ? node.get(field).asText() : fallback;
    }

    private static boolean flag(JsonNode node, String field, boolean fallback) {
        return node.hasNonNull(field) ? node.get(field).asBoolean() : fallback;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
