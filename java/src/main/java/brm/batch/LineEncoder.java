package brm.batch;

import brm.BrmException;
import brm.io.Jsonl;
import brm.tokenize.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Turns one input line into token ids: {@code {"prompt", "response"[, "input"]}} through the text rules,
 * or {@code {"input_ids": [...]}} as given. The tokenizer ({@code tokenizer.json} in the model
 * directory) is loaded on the first text line, so a directory without one still serves input_ids lines.
 */
public final class LineEncoder {
    private final Path modelDir;
    private final TextRules rules;
    private final int vocabSize;
    private final boolean responseRequired;
    private Tokenizer tokenizer;
    private TextRules.Specials specials;

    /** @param responseRequired false where a prompt alone is a valid line (next-token logits) */
    public LineEncoder(Path modelDir, TextRules rules, int vocabSize, boolean responseRequired) {
        this.modelDir = modelDir;
        this.rules = rules;
        this.vocabSize = vocabSize;
        this.responseRequired = responseRequired;
    }

    public int[] encode(Jsonl.Line line, String source) {
        return encode(line.value(), source + ":" + line.number());
    }

    /** One record's ids; {@code where} names it in errors (a file and line, or brm spark-score's row id). */
    public int[] encode(JsonNode v, String where) {
        if (v.has("input_ids")) {
            if (v.has("prompt") || v.has("response"))
                throw new BrmException(where + ": has both input_ids and prompt/response; give one or the other");
            return ids(v, "input_ids", where);
        }
        String response = responseRequired || v.has("response") ? text(v, "response", where) : "";
        return encodeText(v, response, where);
    }

    /**
     * A preference pair, [chosen ids, rejected ids]: {@code {"prompt", "chosen", "rejected"[, "input"]}}
     * (the TRL convention; each side is prompt + response under the text rules) or
     * {@code {"chosen_ids", "rejected_ids"}}. A pair whose two sides are the same sequence is an error,
     * or null when not identicalIsError.
     */
    public int[][] encodePair(Jsonl.Line line, String source, boolean identicalIsError) {
        String where = source + ":" + line.number();
        JsonNode v = line.value();
        int[][] pair;
        if (v.has("chosen_ids") || v.has("rejected_ids")) {
            pair = new int[][] {ids(v, "chosen_ids", where), ids(v, "rejected_ids", where)};
        } else {
            String chosen = text(v, "chosen", where), rejected = text(v, "rejected", where);
            if (chosen.isEmpty() || rejected.isEmpty())
                throw new BrmException(where + ": \"" + (chosen.isEmpty() ? "chosen" : "rejected") + "\" is empty");
            pair = new int[][] {encodeText(v, chosen, where), encodeText(v, rejected, where)};
        }
        if (Arrays.equals(pair[0], pair[1])) {
            if (!identicalIsError) return null;
            throw new BrmException(where + ": chosen and rejected are the same sequence"
                    + (v.path("chosen").equals(v.path("rejected")) ? "" : " once tokenized and fitted to --max-length " + rules.maxLength()) + " (--skip-identical skips such pairs)");
        }
        return pair;
    }

    private int[] ids(JsonNode v, String field, String where) {
        JsonNode ids = v.get(field);
        if (ids == null) throw new BrmException(where + ": missing field \"" + field + "\"");
        if (!ids.isArray()) throw new BrmException(where + ": " + field + " must be an array of integers");
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode id = ids.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt())
                throw new BrmException(where + ": " + field + "[" + i + "] = " + id + " is not an integer token id");
            out[i] = id.intValue();
        }
        return rules.fit(out, vocabSize, where);
    }

    /** The line's prompt (and optional input) with this response, under the text rules. */
    private int[] encodeText(JsonNode v, String response, String where) {
        String prompt = text(v, "prompt", where);
        JsonNode input = v.get("input");
        if (input != null && !input.isNull() && !input.isTextual()) throw new BrmException(where + ": \"input\" must be a string");
        int[] out = rules.encode(tokenizer(where), specials, prompt, input == null || input.isNull() ? null : input.asText(), response, where);
        return rules.fit(out, vocabSize, where);
    }

    private static String text(JsonNode v, String field, String where) {
        JsonNode n = v.get(field);
        if (n == null) throw new BrmException(where + ": missing field \"" + field + "\"");
        if (!n.isTextual()) throw new BrmException(where + ": \"" + field + "\" must be a string");
        return n.asText();
    }

    private Tokenizer tokenizer(String where) {
        if (tokenizer == null) {
            Path file = modelDir.resolve("tokenizer.json");
            if (!Files.isRegularFile(file))
                throw new BrmException(where + ": the line has text but " + modelDir + " has no tokenizer.json (give input_ids instead)");
            tokenizer = Tokenizer.load(file);
            specials = TextRules.Specials.of(tokenizer);
        }
        return tokenizer;
    }
}
