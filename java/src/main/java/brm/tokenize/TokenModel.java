package brm.tokenize;

import java.util.Map;

/** The {@code model} of a tokenizer.json: its vocabulary and how it cuts one word into token ids. */
sealed interface TokenModel permits Bpe, WordPiece {
    /** Appends the ids of one pre-tokenized word (non-empty) to out. */
    void tokenize(String word, IntList out);

    /** token → id, every entry of the model's vocabulary. */
    Map<String, Integer> vocab();

    /** id → token, or null where the vocabulary has no such id. */
    String token(int id);

    /** The unknown token, or null when the model has none. */
    String unkToken();
}
