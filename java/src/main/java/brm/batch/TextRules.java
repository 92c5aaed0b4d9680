package brm.batch;

import brm.BrmException;
import brm.backbone.ModelConfig;
import brm.tokenize.Tokenizer;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * The rules that turn an input line into the token ids a model reads, shared by score, tokenize and
 * logits so all three agree:
 *   text   = template(prompt, input, response)
 *   ids    = specialPrefix + tokenize(text) + specialSuffix (+ eos with appendEos)
 * A sequence longer than maxLength is an error naming the line, or with truncation LEFT/RIGHT loses
 * tokens at that end of the text part only: special tokens and the appended eos are always kept, as
 * Hugging Face's truncation keeps them. Pre-tokenized {@code input_ids} are used exactly as given
 * (truncation then cuts the raw ids).
 *
 * @param maxLength the longest allowed sequence (the model's position limit when not set by the user)
 * @param eosId     the id appended by appendEos, or -1 when the model has none
 */
public record TextRules(Template template, boolean appendEos, int maxLength, Truncation truncation, int eosId) {
    public TextRules {
        if (maxLength < 1) throw new BrmException("--max-length must be at least 1, got " + maxLength);
        if (appendEos && eosId < 0) throw new BrmException("--append-eos: the model defines no eos_token_id");
    }

    /**
     * The rules for the model in dir: maxLength 0 means the model's position limit, and a larger one
     * than the limit is refused (brm score, brm spark-score and the other commands read the same options).
     */
    public static TextRules forModel(Path dir, ModelConfig config, Template template, boolean appendEos, int maxLength, Truncation truncation) {
        int limit = config.maxPositionEmbeddings();
        if (maxLength > limit)
            throw new BrmException("--max-length " + maxLength + " exceeds the model's limit of " + limit + " positions (" + dir.resolve("config.json") + ")");
        return new TextRules(template, appendEos, maxLength == 0 ? limit : maxLength, truncation,
                config.tokens().eos().isEmpty() ? -1 : config.tokens().eos().getFirst());
    }

    /** The special tokens a tokenizer's post-processor puts around a single sequence. */
    public record Specials(int[] prefix, int[] suffix) {
        /** Learns prefix and suffix from the tokenizer itself by encoding a probe with and without them. */
        public static Specials of(Tokenizer tokenizer) {
            int[] content = tokenizer.encode("a", false), wrapped = tokenizer.encode("a", true);
            int extra = wrapped.length - content.length;
            for (int p = 0; p <= extra; p++)
                if (Arrays.equals(wrapped, p, p + content.length, content, 0, content.length))
                    return new Specials(Arrays.copyOf(wrapped, p), Arrays.copyOfRange(wrapped, p + content.length, wrapped.length));
            throw new BrmException("tokenizer's post-processor does not wrap a single sequence as prefix + text + suffix");
        }
    }

    /** Ids for a text line; {@code where} names the file and line for errors. */
    public int[] encode(Tokenizer tokenizer, Specials specials, String prompt, String input, String response, String where) {
        int[] text = tokenizer.encode(template.apply(prompt, input, response), false);
        int fixed = specials.prefix().length + specials.suffix().length + (appendEos ? 1 : 0);
        int room = maxLength - fixed;
        if (text.length > room) {
            if (truncation == Truncation.ERROR || room < 1)
                throw tooLong(where, text.length + fixed);
            text = truncation == Truncation.RIGHT ? Arrays.copyOf(text, room) : Arrays.copyOfRange(text, text.length - room, text.length);
        }
        int[] ids = new int[text.length + fixed];
        System.arraycopy(specials.prefix(), 0, ids, 0, specials.prefix().length);
        System.arraycopy(text, 0, ids, specials.prefix().length, text.length);
        System.arraycopy(specials.suffix(), 0, ids, specials.prefix().length + text.length, specials.suffix().length);
        if (appendEos) ids[ids.length - 1] = eosId;
        return ids;
    }

    /** Pre-tokenized ids, checked against the vocabulary and fitted to maxLength. */
    public int[] fit(int[] ids, int vocabSize, String where) {
        if (ids.length == 0) throw new BrmException(where + ": input_ids is empty");
        for (int id : ids)
            if (id < 0 || id >= vocabSize) throw new BrmException(where + ": token id " + id + " is outside the vocabulary [0, " + vocabSize + ")");
        if (ids.length <= maxLength) return ids;
        return switch (truncation) {
            case ERROR -> throw tooLong(where, ids.length);
            case RIGHT -> Arrays.copyOf(ids, maxLength);
            case LEFT -> Arrays.copyOfRange(ids, ids.length - maxLength, ids.length);
        };
    }

    private BrmException tooLong(String where, int length) {
        return new BrmException(where + ": " + length + " tokens, longer than --max-length " + maxLength
                + " (use --truncate left|right to cut it)");
    }
}
