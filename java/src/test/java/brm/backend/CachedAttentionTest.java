package brm.backend;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The KV-cache ops, cacheAppend and cachedAttention, against the backend's own causal attention: with the keys
 * and values of a packed batch (sequences of 1, 5 and 19 tokens, GQA 4/2 heads of dim 12, k and v interleaved as
 * GPT-NeoX's fused layout) appended to cache slots in another order, every row attending its slot equals
 * causal attention over its sequence; and one row per sequence at its last position (a decode step) equals that
 * row. On the CPU backend (1 and 2 threads) and the float64 reference backend (results compared as floats).
 */
class CachedAttentionTest {
    private static final Packing PACKING = Packing.of(List.of(new int[1], new int[5], new int[19]));
    private static final int HEADS = 4, KV_HEADS = 2, DIM = 12, CAPACITY = 23;
    /** Sequence s goes to cache slot SLOTS[s]. */
    private static final int[] SLOTS = {2, 0, 1};

    private static Backend backend(int threads) {
        return threads == 0 ? new ReferenceBackend() : new CpuBackend(threads);
    }

    /** threads 0: the reference backend. */
    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2})
    void cachedAttentionEqualsCausalAttention(int threads) {
        Random random = new Random(31);
        int rows = PACKING.tokens();
        float[] q = new float[rows * HEADS * DIM], kv = new float[rows * 2 * KV_HEADS * DIM];
        for (int i = 0; i < q.length; i++) q[i] = (float) (random.nextGaussian() * 1.5);
        for (int i = 0; i < kv.length; i++) kv[i] = (float) (random.nextGaussian() * 1.5);
        float scale = (float) (1 / Math.sqrt(DIM));
        try (Backend be = backend(threads)) {
            Tensor qt = be.upload(q, rows, HEADS * DIM), kvt = be.upload(kv, rows, 2 * KV_HEADS * DIM);
            Heads qh = Heads.packed(qt, HEADS, DIM), k = new Heads(kvt, 0, 2 * DIM, KV_HEADS, DIM), v = new Heads(kvt, DIM, 2 * DIM, KV_HEADS, DIM);
            Tensor expected = be.allocate(rows, HEADS * DIM), out = be.allocate(rows, HEADS * DIM);
            be.attention(PACKING, qh, k, v, true, scale, expected);

            Tensor kc = be.allocate(SLOTS.length * KV_HEADS * DIM, CAPACITY), vc = be.allocate(SLOTS.length * CAPACITY, KV_HEADS * DIM);
            be.cacheAppend(PACKING, k, v, SLOTS, kc, vc);
            be.cachedAttention(PACKING, qh, kc, vc, SLOTS, scale, out);
            float[] want = be.download(expected), got = be.download(out);
            assertClose("prefill", want, got, threads == 0 ? 1e-6 : 1e-5);

            // a decode step: each sequence's last query alone, at its position
            int seqs = PACKING.seqs();
            int[] starts = new int[seqs + 1], positions = new int[seqs];
            float[] lastQ = new float[seqs * HEADS * DIM], lastWant = new float[seqs * HEADS * DIM];
            for (int s = 0; s < seqs; s++) {
                int last = PACKING.start(s) + PACKING.length(s) - 1;
                starts[s + 1] = s + 1;
                positions[s] = PACKING.positions()[last];
                System.arraycopy(q, last * HEADS * DIM, lastQ, s * HEADS * DIM, HEADS * DIM);
                System.arraycopy(want, last * HEADS * DIM, lastWant, s * HEADS * DIM, HEADS * DIM);
            }
            Tensor step = be.allocate(seqs, HEADS * DIM);
            be.cachedAttention(new Packing(starts, positions), Heads.packed(be.upload(lastQ, seqs, HEADS * DIM), HEADS, DIM), kc, vc, SLOTS, scale, step);
            assertClose("decode step", lastWant, be.download(step), threads == 0 ? 1e-6 : 1e-5);

            float[] keys = be.download(kc), values = be.download(vc);
            for (int s = 0; s < PACKING.seqs(); s++)
                for (int r = PACKING.start(s); r < PACKING.start(s) + PACKING.length(s); r++)
                    for (int g = 0; g < KV_HEADS; g++)
                        for (int e = 0; e < DIM; e++) {
                            int pos = PACKING.positions()[r], at = r * 2 * KV_HEADS * DIM + g * 2 * DIM + e;
                            assertEquals(kv[at], keys[((SLOTS[s] * KV_HEADS + g) * DIM + e) * CAPACITY + pos], "cached key");
                            assertEquals(kv[at + DIM], values[(SLOTS[s] * CAPACITY + pos) * KV_HEADS * DIM + g * DIM + e], "cached value");
                        }
            assertThrows(IllegalArgumentException.class, () -> be.cachedAttention(PACKING, qh, kc, vc, new int[] {0, 1, SLOTS.length}, scale, out),
                    "a slot outside the cache");
        }
    }

    private static void assertClose(String what, float[] expected, float[] actual, double tolerance) {
        double worst = 0;
        for (int i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        assertTrue(worst <= tolerance, what + ": max error " + worst);
    }
}
