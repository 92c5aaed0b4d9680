package brm.backbone;

import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * Token embeddings: x[t] = words[id_t] (GPT-NeoX embed_in, Llama embed_tokens). BERT adds absolute
 * positions and token type 0 (brm scores single segments), then a LayerNorm:
 *   x[t] = LayerNorm(words[id_t] + positions[pos_t] + tokenTypes[0]),
 * with positions + tokenTypes[0] summed once at load into one [maxPositions, hidden] table.
 *
 * @param positions null for the decoders (their positions are rotary, inside attention)
 * @param norm      null for the decoders
 */
public record Embeddings(Backend backend, Tensor words, Tensor positions, LayerNorm norm) {
    static Embeddings words(Backend backend, Checkpoint c, String name, int vocab, int hidden) {
        return new Embeddings(backend, backend.upload(c.floats(name, vocab, hidden), vocab, hidden), null, null);
    }

    static Embeddings bert(Backend backend, Checkpoint c, BertConfig config) {
        String p = config.prefix() + "embeddings.";
        int hidden = config.hiddenSize(), maxPos = config.maxPositionEmbeddings();
        float[] positions = c.floats(p + "position_embeddings.weight", maxPos, hidden);
        float[] types = c.floats(p + "token_type_embeddings.weight", config.typeVocabSize(), hidden);
        for (int pos = 0; pos < maxPos; pos++)
            for (int i = 0; i < hidden; i++) positions[pos * hidden + i] += types[i];
        return new Embeddings(backend,
                backend.upload(c.floats(p + "word_embeddings.weight", config.vocabSize(), hidden), config.vocabSize(), hidden),
                backend.upload(positions, maxPos, hidden),
                LayerNorm.load(backend, c, p + "LayerNorm", hidden, config.layerNormEps()));
    }

    /** out [tokens, hidden] = the embeddings of ids [tokens] (checked against the vocabulary by the caller). */
    public void forward(Packing p, int[] ids, Tensor out) {
        backend.embed(ids, words, out);
        if (positions == null) return;
        backend.addPositions(p, positions, out);
        norm.forward(out, out);
    }
}
