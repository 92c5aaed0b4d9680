package brm.backbone;

import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * A decoder-only architecture (GPT-NeoX, Llama): its layers are a {@link Decoder}, which does the
 * forward (with or without a KV cache) and the backward; an architecture only says how its
 * checkpoint becomes that decoder.
 */
sealed interface DecoderBackbone extends Backbone permits GptNeoX, Llama {
    Decoder decoder();

    @Override
    default Tensor forward(Packing p, int[] ids) {
        return decoder().forward(p, ids);
    }

    @Override
    default KvCache cache(int slots, int capacity) {
        return decoder().cache(slots, capacity);
    }

    @Override
    default Tensor forward(Packing p, int[] ids, KvCache cache, int[] slots) {
        return decoder().forward(p, ids, cache, slots);
    }

    @Override
    default void backward(Packing p, Tensor dHidden) {
        decoder().backward(p, dHidden);
    }
}
