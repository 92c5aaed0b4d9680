package brm.backbone;

import brm.backend.Backend;
import brm.backend.Heads;
import brm.backend.Packing;
import brm.backend.Tensor;

/**
 * The keys and values of a decoder's past tokens, so that each new token costs one row per layer instead
 * of a forward over its whole prefix. Per layer, K and V [slots·capacity, Hkv·D]: slot s holds one
 * sequence, its token at position j in row s·capacity + j. A forward with the cache
 * ({@link Backbone#forward(Packing, int[], KvCache, int[])}) gives each sequence of the batch its next
 * tokens at their absolute positions (those the slot holds so far, +1 per row), appends their keys and
 * values (after rotary) and lets every query attend its own slot:
 *   K[s·capacity + pos_t] = k_t,  V[s·capacity + pos_t] = v_t
 *   o_t = Σ_{j ≤ pos_t} softmax_j(q_t·K[s·capacity + j] / √D) · V[s·capacity + j]
 * which is causal attention over the sequence's tokens 0..pos_t, whatever else is in the batch. A slot
 * takes a new sequence by writing it from position 0; rows past a sequence's length are never read.
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
        int rows = Math.multiplyExact(slots, capacity);
        for (int l = 0; l < widths.length; l++) {
            keys[l] = backend.allocate(rows, widths[l]);
            values[l] = backend.allocate(rows, widths[l]);
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

    /**
     * One forward's addressing: rows [tokens] the cache row of each token, first [seqs] the cache row of
     * each sequence's position 0.
     */
    record Step(KvCache cache, int[] rows, int[] first) {
        Layer layer(int index) {
            return new Layer(this, index);
        }
    }

    /** One layer of a {@link Step}, what {@link Attention} reads and writes. */
    record Layer(Step step, int index) {
        /** Appends k, v [tokens, Hkv heads] to the cache, then out [tokens, Hq·D] = each query q attending its slot. */
        void attend(Packing p, Heads q, Heads k, Heads v, float scale, Tensor out) {
            KvCache c = step.cache;
            Heads ck = Heads.packed(c.keys[index], k.count(), k.dim()), cv = Heads.packed(c.values[index], v.count(), v.dim());
            c.backend.scatterHeads(k, step.rows, ck);
            c.backend.scatterHeads(v, step.rows, cv);
            c.backend.cachedAttention(p, q, ck, cv, step.first, scale, out);
        }
    }

    /** The addressing of a batch p whose sequence s continues the one in slot slots[s]. */
    Step step(Packing p, int[] slotOf) {
        if (slotOf.length != p.seqs()) throw new IllegalArgumentException(slotOf.length + " slots for " + p.seqs() + " sequences");
        int[] rows = new int[p.tokens()], first = new int[p.seqs()];
        for (int s = 0; s < p.seqs(); s++) {
            if (slotOf[s] < 0 || slotOf[s] >= slots) throw new IllegalArgumentException("slot " + slotOf[s] + " of a " + slots + "-slot cache");
            for (int other = 0; other < s; other++)
                if (slotOf[other] == slotOf[s]) throw new IllegalArgumentException("slot " + slotOf[s] + " fed twice in one batch");
            first[s] = slotOf[s] * capacity;
            for (int r = p.start(s); r < p.start(s) + p.length(s); r++) {
                int pos = p.positions()[r];
                if (pos < 0 || pos >= capacity) throw new IllegalArgumentException("position " + pos + " outside a cache of " + capacity + " positions");
                rows[r] = first[s] + pos;
            }
        }
        return new Step(this, rows, first);
    }
}
