package brm.backbone;

import brm.backend.Pooling;

import java.util.ArrayList;
import java.util.List;

/**
 * BERT encoders (transformers' BertConfig) plus brm's {@code pooling}: how the reward head and the
 * sentence embedding read the last hidden state, "mean" (default) over the tokens or "cls" (the first
 * token), and {@code normalize_embeddings}: whether the family's sentence embeddings are L2-normalised
 * (default false). brm's head is score [1, hidden] on the pooled vector: BertPooler is not used, and so
 * not listed among the linears.
 */
public record BertConfig(int vocabSize, int hiddenSize, int numLayers, int numHeads, int intermediateSize,
                         int maxPositionEmbeddings, int typeVocabSize, double layerNormEps, double initializerRange,
                         Pooling pooling, boolean normalizeEmbeddings, TokenIds tokens) implements ModelConfig {

    static BertConfig parse(ConfigFields f) {
        f.oneOf("hidden_act", "gelu", "gelu");
        f.oneOf("position_embedding_type", "absolute", "absolute");
        if (f.bool("is_decoder", false)) throw f.error("is_decoder true is not supported for bert (brm runs BERT as a bidirectional encoder)");
        int hidden = f.positive("hidden_size", 768), heads = f.positive("num_attention_heads", 12);
        if (hidden % heads != 0) throw f.error("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        Pooling pooling = f.oneOf("pooling", "mean", "mean", "cls").equals("mean") ? Pooling.MEAN : Pooling.FIRST;
        return new BertConfig(f.positive("vocab_size", 30522), hidden, f.positive("num_hidden_layers", 12), heads,
                f.positive("intermediate_size", 3072), f.positive("max_position_embeddings", 512), f.positive("type_vocab_size", 2),
                f.number("layer_norm_eps", 1e-12), f.number("initializer_range", 0.02), pooling, f.bool("normalize_embeddings", false),
                new TokenIds(f.tokenId("bos_token_id", null), f.tokenIds("eos_token_id", null), f.tokenId("pad_token_id", 0)));
    }

    @Override
    public String modelType() { return "bert"; }

    @Override
    public String prefix() { return "bert."; }

    @Override
    public boolean causal() { return false; }

    public int headDim() {
        return hiddenSize / numHeads;
    }

    @Override
    public List<LinearModule> linearModules() {
        List<LinearModule> modules = new ArrayList<>();
        for (int i = 0; i < numLayers; i++) {
            String layer = prefix() + "encoder.layer." + i + ".";
            for (String p : List.of("query", "key", "value"))
                modules.add(new LinearModule(layer + "attention.self." + p, hiddenSize, hiddenSize, true));
            modules.add(new LinearModule(layer + "attention.output.dense", hiddenSize, hiddenSize, true));
            modules.add(new LinearModule(layer + "intermediate.dense", hiddenSize, intermediateSize, true));
            modules.add(new LinearModule(layer + "output.dense", intermediateSize, hiddenSize, true));
        }
        modules.add(score());
        return List.copyOf(modules);
    }
}
