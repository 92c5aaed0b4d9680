package brm.backbone;

import brm.backend.Backend;
import brm.backend.Heads;
import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * The keys and values of a decoder's past tokens, so that each new token costs one row per layer instead
 * of a forward over its whole prefix. Per layer, C positions for each of `slots` sequences, in the layout
 * of {@link Backend#cacheAppend}: K transposed [slots·Hkv·D, C], V [slots·C, Hkv·D]. A forward with the
 * cache ({@link Backbone#forward(Packing, int[], KvCache, int[])}) gives each sequence of the batch its
 * next tokens at their absolute positions (those its slot holds so far, +1 per row), appends their keys
 * and values (after rotary) and lets every query attend its own slot:
 *   K_slot[pos_t] = k_t,  V_slot[pos_t] = v_t
 *   o_t = Σ_{j ≤ pos_t} softmax_j(q_t·K_slot[j] / √D) · V_slot[j]
 * which is causal attention over the sequence's tokens 0..pos_t, whatever else is in the batch. A slot
 * takes a new sequence by writing it from position 0; positions past a sequence's length are never read.
 */
public final class KvCache {
    private final Backend backend;
    private final Tensor[] keys, values;
    private final int slots, capacity;

    /** widths[layer] = Hkv·D of that layer's attention. */
    KvCache(Backend backend, int[] widths, int slots, int capacity) {
        if (slots < 1 || capacity < 1) throw new IllegalArgumentException("KV cache of " + slots + " slots x " + capacity + " positions");
        this.backend = backend;
        this.slots = slots;
        this.capacity = capacity;
        this.keys = new Tensor[widths.length];
        this.values = new Tensor[widths.length];
        for (int l = 0; l < widths.length; l++) {
            keys[l] = backend.allocate(Math.multiplyExact(slots, widths[l]), capacity);
            values[l] = backend.allocate(Math.multiplyExact(slots, capacity), widths[l]);
        }
    }

    public int slots() {
        return slots;
    }

    /** Positions per slot: a sequence's tokens, prompt and generated, must fit. */
    public int capacity() {
        return capacity;
    }

    int layers() {
        return keys.length;
    }

    /** One forward's batch p, its sequence s continuing the one in slot slots[s]. */
    record Step(KvCache cache, Packing p, int[] slots) {
        Layer layer(int index) {
            return new Layer(this, index);
        }
    }

    /** One layer of a {@link Step}, what {@link Attention} reads and writes. */
    record Layer(Step step, int index) {
        /** Appends k, v [tokens, Hkv heads] to the cache, then out [tokens, Hq·D] = each query q attending its slot. */
        void attend(Heads q, Heads k, Heads v, float scale, Tensor out) {
            KvCache c = step.cache;
            c.backend.cacheAppend(step.p, k, v, step.slots, c.keys[index], c.values[index]);
            c.backend.cachedAttention(step.p, q, c.keys[index], c.values[index], step.slots, scale, out);
        }
    }

    /** The step of batch p; a slot may take part once (the backend checks slots and positions against the cache). */
    Step step(Packing p, int[] slotOf) {
        for (int s = 0; s < slotOf.length; s++)
            for (int other = 0; other < s; other++)
                if (slotOf[other] == slotOf[s]) throw new IllegalArgumentException("slot " + slotOf[s] + " fed twice in one batch");
        return new Step(this, p, slotOf);
    }
}
