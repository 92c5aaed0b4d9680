package brm.tokenize;

import brm.BrmException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;

/**
 * A Hugging Face {@code tokenizer.json} tokenizer in pure Java, giving the ids the HF tokenizers
 * library gives (no truncation, no padding). The pipeline of {@code encode(text)}:
 *
 * <pre>
 *   raw text ──cut out added tokens with normalized=false──▶ [text | id]*
 *   each text piece ──normalizer──▶ cut out added tokens with normalized=true ──▶ [text | id]*
 *   each text piece ──pre_tokenizer──▶ words ──model (BPE / WordPiece)──▶ ids
 *   addSpecialTokens: post_processor wraps the ids, e.g. [CLS] ids [SEP]
 * </pre>
 *
 * and {@code decode(ids)}: ids → token strings (added tokens first, unknown ids dropped, special
 * ones dropped when asked) → decoder steps → concatenation. Instances are safe to share between
 * threads (the only mutable state, BPE's word cache, is concurrent).
 */
public final class Tokenizer {
    /**
     * The role tokens a model needs, where the tokenizer defines them. tokenizer.json does not name
     * them (HF keeps them in tokenizer_config.json): cls / sep come from a post-processor that wraps
     * the sequence on both sides, unk from the model, pad from the padding section, and otherwise
     * each role takes the first existing token among conventional names ({@link Role}).
     */
    public record SpecialTokens(OptionalInt bos, OptionalInt eos, OptionalInt pad, OptionalInt unk, OptionalInt cls,
                                OptionalInt sep) {}

    /** What the post-processor puts around a single sequence's ids. */
    record Template(int[] prefix, int[] suffix) {
        static final Template NONE = new Template(new int[0], new int[0]);
    }

    /** Conventional names of the role tokens, most common first. */
    private enum Role {
        BOS("<s>", "<|endoftext|>", "<|begin_of_text|>", "<bos>", "[BOS]"),
        EOS("</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "[EOS]"),
        PAD("<pad>", "[PAD]", "<|padding|>"),
        UNK("<unk>", "[UNK]", "<|endoftext|>"),
        CLS("[CLS]", "<cls>"),
        SEP("[SEP]", "<sep>");

        final List<String> names;

        Role(String... names) {
            this.names = List.of(names);
        }
    }

    private final Path source;
    private final AddedVocabulary added;
    private final TextNormalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final TokenModel model;
    private final Template template;
    private final Decoder decoder;
    private final SpecialTokens specialTokens;
    private final int vocabSize;

    /** normalizer, preTokenizer and decoder may be null (the step is skipped), so may paddingToken. */
    Tokenizer(Path source, AddedVocabulary added, TextNormalizer normalizer, PreTokenizer preTokenizer, TokenModel model,
              Template template, Decoder decoder, String paddingToken) {
        this.source = source;
        this.added = added;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.template = template;
        this.decoder = decoder;
        boolean wraps = template.prefix().length > 0 && template.suffix().length > 0;
        this.specialTokens = new SpecialTokens(find(Role.BOS, null), find(Role.EOS, null), find(Role.PAD, paddingToken),
                find(Role.UNK, model.unkToken()),
                wraps ? OptionalInt.of(template.prefix()[0]) : find(Role.CLS, null),
                wraps ? OptionalInt.of(template.suffix()[template.suffix().length - 1]) : find(Role.SEP, null));
        this.vocabSize = model.vocab().size()
                + (int) added.contents().stream().filter(token -> !model.vocab().containsKey(token)).count();
    }

    /** Reads a tokenizer.json; any unsupported component is a {@link BrmException} naming the file. */
    public static Tokenizer load(Path tokenizerJson) {
        return TokenizerJson.load(tokenizerJson);
    }

    /** text (any length) → n token ids, exactly HF {@code encode(text, add_special_tokens).ids}. */
    public int[] encode(String text, boolean addSpecialTokens) {
        IntList ids = new IntList();
        if (addSpecialTokens) ids.addAll(template.prefix());
        List<PreTokenizer.Piece> words = new ArrayList<>();
        for (AddedVocabulary.Segment raw : added.splitRaw(text)) {
            if (raw.isToken()) {
                ids.add(raw.id());
                continue;
            }
            String piece = text.substring(raw.start(), raw.end());
            String normalized = normalizer == null ? piece : normalizer.normalize(piece);
            for (AddedVocabulary.Segment segment : added.splitNormalized(normalized)) {
                if (segment.isToken()) {
                    ids.add(segment.id());
                    continue;
                }
                PreTokenizer.Piece word = new PreTokenizer.Piece(normalized.substring(segment.start(), segment.end()),
                        raw.start() == 0 && segment.start() == 0);
                if (preTokenizer == null) words.add(word);
                else preTokenizer.split(word, words);
                for (PreTokenizer.Piece w : words) model.tokenize(w.text(), ids);
                words.clear();
            }
        }
        if (addSpecialTokens) ids.addAll(template.suffix());
        return ids.toArray();
    }

    /** ids (n) → text, HF {@code decode(ids, skip_special_tokens)}: ids the tokenizer lacks are dropped. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            String token = tokenOrNull(id);
            if (token != null && !(skipSpecialTokens && added.isSpecial(token))) tokens.add(token);
        }
        return decoder == null ? String.join(" ", tokens) : String.join("", decoder.decodeChain(tokens));
    }

    /** Number of distinct tokens, added ones included (HF {@code get_vocab_size(true)}). */
    public int vocabSize() {
        return vocabSize;
    }

    /** token string → id, added tokens first, then the model vocab. */
    public OptionalInt tokenId(String token) {
        Integer id = added.id(token);
        if (id == null) id = model.vocab().get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** id → token string; an id outside the vocabulary is an error. */
    public String token(int id) {
        String token = tokenOrNull(id);
        if (token == null) throw new IllegalArgumentException(source + ": no token with id " + id);
        return token;
    }

    public SpecialTokens specialTokens() {
        return specialTokens;
    }

    /** The id of the declared token if it exists, else of the first existing conventional name. */
    private OptionalInt find(Role role, String declared) {
        if (declared != null && tokenId(declared).isPresent()) return tokenId(declared);
        for (String name : role.names) if (tokenId(name).isPresent()) return tokenId(name);
        return OptionalInt.empty();
    }

    private String tokenOrNull(int id) {
        String token = added.content(id);
        return token != null ? token : model.token(id);
    }
}
