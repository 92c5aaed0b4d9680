package brm.policy;

import brm.backbone.KvCache;
import brm.backend.Packing;
import brm.reward.CausalLM;

import java.util.ArrayList;
import java.util.List;

/**
 * Teacher-forced decoding through a KV cache, scheduled as {@link Generator} does: sequences take the cache's
 * slots in order, a new one feeds its prompt in the same forward as the others' single next tokens, and a
 * finished one's slot goes to the next. Every logits row is compared with {@link CausalLM#logits} of the whole
 * sequence (full recompute, no cache) at the same position.
 */
public final class CachedDecoding {
    private CachedDecoding() {}

    /** max over all fed rows of |cached - recomputed| / max(|recomputed|, 1). */
    public static double maxError(CausalLM lm, List<int[]> sequences, int[] promptLengths, int slots) {
        int vocab = lm.config().vocabSize(), longest = 0;
        List<float[][]> full = new ArrayList<>();
        for (int[] s : sequences) {
            full.add(lm.logits(s));
            longest = Math.max(longest, s.length);
        }
        KvCache cache = lm.cache(slots, longest);
        int[] seqOf = new int[slots], fed = new int[slots];
        java.util.Arrays.fill(seqOf, -1);
        float[] logits = new float[slots * vocab];
        int next = 0, finished = 0;
        double worst = 0;
        while (finished < sequences.size()) {
            List<Integer> ids = new ArrayList<>(), positions = new ArrayList<>(), starts = new ArrayList<>(List.of(0)), used = new ArrayList<>();
            for (int s = 0; s < slots; s++) {
                if (seqOf[s] < 0 && next < sequences.size()) {
                    seqOf[s] = next++;
                    fed[s] = 0;
                }
                if (seqOf[s] < 0) continue;
                int[] seq = sequences.get(seqOf[s]);
                int upTo = fed[s] == 0 ? promptLengths[seqOf[s]] : fed[s] + 1;
                for (int t = fed[s]; t < upTo; t++) {
                    ids.add(seq[t]);
                    positions.add(t);
                }
                fed[s] = upTo;
                starts.add(ids.size());
                used.add(s);
            }
            int[] slotOf = used.stream().mapToInt(Integer::intValue).toArray();
            lm.nextLogits(new Packing(starts.stream().mapToInt(Integer::intValue).toArray(), positions.stream().mapToInt(Integer::intValue).toArray()),
                    ids.stream().mapToInt(Integer::intValue).toArray(), cache, slotOf, logits);
            for (int k = 0; k < slotOf.length; k++) {
                int s = slotOf[k];
                float[] expected = full.get(seqOf[s])[fed[s] - 1];
                for (int v = 0; v < vocab; v++)
                    worst = Math.max(worst, Math.abs(logits[k * vocab + v] - expected[v]) / Math.max(Math.abs(expected[v]), 1));
                if (fed[s] == sequences.get(seqOf[s]).length) {
                    seqOf[s] = -1;
                    finished++;
                }
            }
        }
        return worst;
    }
}
