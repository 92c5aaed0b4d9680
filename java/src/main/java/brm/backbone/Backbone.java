package brm.backbone;

import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * The transformer of a model without its head: token ids in, last hidden states out, for a batch
 * in the packed layout of {@link Packing}. One implementation per architecture, written once
 * against {@link brm.backend.Backend}.
 *
 * Built from {@link Linears} in training mode, a backbone keeps every layer's activations of the
 * last forward (each layer has its own {@link Workspace}) so that {@link #backward} can follow;
 * otherwise all layers share one workspace and backward is refused.
 */
public sealed interface Backbone permits DecoderBackbone, Bert {
    static Backbone load(ModelConfig config, Checkpoint checkpoint, Linears linears, brm.backend.Backend backend) {
        return switch (config) {
            case GptNeoXConfig c -> GptNeoX.load(c, checkpoint, linears, backend);
            case LlamaConfig c -> Llama.load(c, checkpoint, linears, backend);
            case BertConfig c -> Bert.load(c, checkpoint, linears, backend);
        };
    }

    ModelConfig config();

    /**
     * hidden [tokens, hidden] for ids [tokens] (ids in the vocabulary, each sequence at most
     * max_position_embeddings long): the decoders' final norm output, BERT's last layer output.
     * The tensor is a workspace buffer, valid until the next call.
     */
    Tensor forward(Packing p, int[] ids);

    /** Decoders: an empty {@link KvCache} for {@code slots} sequences of up to {@code capacity} tokens each. */
    default KvCache cache(int slots, int capacity) {
        throw new UnsupportedOperationException(config().modelType() + " is an encoder: no KV cache");
    }

    /**
     * Decoders: hidden [tokens, hidden] for ids [tokens] where sequence s of p continues the one held in cache
     * slot slots[s], its rows at their absolute positions (p.positions(): the tokens the slot holds so far, +1
     * per row); their keys and values are appended to the slot (see {@link KvCache}). A workspace buffer, as
     * {@link #forward(Packing, int[])}.
     */
    default Tensor forward(Packing p, int[] ids, KvCache cache, int[] slots) {
        throw new UnsupportedOperationException(config().modelType() + " is an encoder: no KV cache");
    }

    /**
     * Backpropagates dHidden [tokens, hidden], the gradient of the last {@link #forward}'s output, to
     * the trained LoRA updates (their gradients accumulate). Layers below the lowest trained one are
     * skipped, as is the gradient of the embeddings (frozen). dHidden may be overwritten.
     */
    void backward(Packing p, Tensor dHidden);
}
