package brm.backend;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static brm.backend.CudaParity.assertClose;
import static brm.backend.CudaParity.gaussian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The CUDA backend's attention ops (cuda/attention.cu) against the float64 reference backend, with fresh random
 * data: causal and full, GQA (4 query heads on 4, 2 or 1 key/value heads), separate projections and GPT-NeoX's
 * fused qkv layout, head dims on each kernel size (24, 32 | 40, 64 | 80, 128), and a packing whose sequences are
 * 1 token, a whole 64-row tile, and lengths that end inside a tile, one spanning three. Outputs and gradients
 * start as NaN, so a value the kernels leave unwritten fails the comparison.
 */
class CudaAttentionTest {
    private static final Packing PACKING = Packing.of(List.of(new int[70], new int[1], new int[131], new int[9], new int[64]));

    /** One configuration; fused: one [tokens, heads·3·dim] tensor holding q, k, v interleaved per head. */
    record Case(boolean causal, int heads, int kvHeads, int dim, boolean fused) {
        @Override
        public String toString() {
            return (causal ? "causal" : "full") + " " + heads + "/" + kvHeads + " heads of " + dim + (fused ? ", fused qkv" : "");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case(true, 4, 4, 64, false),
                new Case(false, 4, 2, 40, false),
                new Case(true, 4, 2, 24, false),
                new Case(true, 4, 1, 40, false),
                new Case(false, 4, 1, 64, false),
                new Case(true, 3, 3, 80, true),
                new Case(false, 2, 2, 32, true),
                new Case(true, 2, 1, 128, false));
    }

    /** The row-major values of q, k, v: one fused array, or three. */
    private static float[][] inputs(Case c, Random random) {
        int t = PACKING.tokens();
        if (c.fused) return new float[][] {scaled(gaussian(random, t * c.heads * 3 * c.dim), 1.5f)};
        return new float[][] {scaled(gaussian(random, t * c.heads * c.dim), 1.5f), scaled(gaussian(random, t * c.kvHeads * c.dim), 1.5f),
                gaussian(random, t * c.kvHeads * c.dim)};
    }

    /** Arrays shaped like {@link #inputs}, every value {@code v}. */
    private static float[][] filled(Case c, float v) {
        int t = PACKING.tokens();
        float[][] a = c.fused ? new float[][] {new float[t * c.heads * 3 * c.dim]}
                : new float[][] {new float[t * c.heads * c.dim], new float[t * c.kvHeads * c.dim], new float[t * c.kvHeads * c.dim]};
        for (float[] x : a) Arrays.fill(x, v);
        return a;
    }

    private static float[] scaled(float[] v, float by) {
        for (int i = 0; i < v.length; i++) v[i] *= by;
        return v;
    }

    /** q, k, v heads over the values uploaded to {@code be}. */
    private static Heads[] upload(Backend be, Case c, float[][] values) {
        int t = PACKING.tokens(), d = c.dim;
        if (c.fused) {
            Tensor qkv = be.upload(values[0], t, c.heads * 3 * d);
            return new Heads[] {new Heads(qkv, 0, 3 * d, c.heads, d), new Heads(qkv, d, 3 * d, c.heads, d), new Heads(qkv, 2 * d, 3 * d, c.heads, d)};
        }
        return new Heads[] {Heads.packed(be.upload(values[0], t, c.heads * d), c.heads, d),
                Heads.packed(be.upload(values[1], t, c.kvHeads * d), c.kvHeads, d),
                Heads.packed(be.upload(values[2], t, c.kvHeads * d), c.kvHeads, d)};
    }

    /** The values of the distinct tensors under q, k, v. */
    private static float[][] download(Backend be, Heads[] heads) {
        return heads[0].tensor() == heads[1].tensor() ? new float[][] {be.download(heads[0].tensor())}
                : new float[][] {be.download(heads[0].tensor()), be.download(heads[1].tensor()), be.download(heads[2].tensor())};
    }

    private static float[] nans(int n) {
        float[] v = new float[n];
        Arrays.fill(v, Float.NaN);
        return v;
    }

    /** assertClose, printing the largest error for the record. */
    private static void check(String what, float[] expected, float[] got, double tolerance) {
        double max = 0;
        for (int i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(got[i] - expected[i]) / (1 + Math.abs(expected[i])));
        System.out.printf("%s: max relative error %.3g%n", what, max);
        assertClose(what, expected, got, tolerance);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void attentionMatchesTheReference(Case c) {
        Random random = new Random();
        float[][] values = inputs(c, random);
        float scale = (float) (1 / Math.sqrt(c.dim));
        int t = PACKING.tokens(), width = c.heads * c.dim;
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Heads[] g = upload(be, c, values), r = upload(ref, c, values);
            Tensor out = be.upload(nans(t * width), t, width), want = ref.allocate(t, width);
            be.attention(PACKING, g[0], g[1], g[2], c.causal, scale, out);
            ref.attention(PACKING, r[0], r[1], r[2], c.causal, scale, want);
            check("attention, " + c, ref.download(want), be.download(out), 2e-5);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void attentionBackwardMatchesTheReference(Case c) {
        Random random = new Random();
        float[][] values = inputs(c, random);
        float scale = (float) (1 / Math.sqrt(c.dim));
        int t = PACKING.tokens(), width = c.heads * c.dim;
        float[] dOut = gaussian(random, t * width);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Heads[] g = upload(be, c, values), r = upload(ref, c, values);
            Heads[] gGrad = upload(be, c, filled(c, Float.NaN)), rGrad = upload(ref, c, filled(c, 0));
            be.attentionBackward(PACKING, g[0], g[1], g[2], c.causal, scale, be.upload(dOut, t, width), gGrad[0], gGrad[1], gGrad[2]);
            ref.attentionBackward(PACKING, r[0], r[1], r[2], c.causal, scale, ref.upload(dOut, t, width), rGrad[0], rGrad[1], rGrad[2]);
            float[][] want = download(ref, rGrad), got = download(be, gGrad);
            String[] names = c.fused ? new String[] {"dqkv"} : new String[] {"dq", "dk", "dv"};
            for (int i = 0; i < want.length; i++) check("attentionBackward " + names[i] + ", " + c, want[i], got[i], 1e-4);

            // no atomics: the same inputs give the same bits
            Heads[] again = upload(be, c, filled(c, Float.NaN));
            be.attentionBackward(PACKING, g[0], g[1], g[2], c.causal, scale, be.upload(dOut, t, width), again[0], again[1], again[2]);
            float[][] second = download(be, again);
            for (int i = 0; i < got.length; i++) assertArrayEquals(got[i], second[i], "attentionBackward " + names[i] + " run twice");
        }
    }

    /**
     * Every score far below zero (about -150: q and k lean on opposite directions), where softmax only works shifted
     * by its max: outputs and all three gradients still match, so no padded key or query reaches an exponent unmasked.
     */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void scoresFarBelowZero(boolean causal) {
        Random random = new Random();
        Case c = new Case(causal, 4, 2, 64, false);
        float[][] values = inputs(c, random);
        for (int i = 0; i < values[0].length; i++) values[0][i] += 4.4f;
        for (int i = 0; i < values[1].length; i++) values[1][i] -= 4.4f;
        float scale = (float) (1 / Math.sqrt(c.dim));
        int t = PACKING.tokens(), width = c.heads * c.dim;
        float[] dOut = gaussian(random, t * width);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Heads[] g = upload(be, c, values), r = upload(ref, c, values);
            Tensor out = be.upload(nans(t * width), t, width), want = ref.allocate(t, width);
            be.attention(PACKING, g[0], g[1], g[2], c.causal, scale, out);
            ref.attention(PACKING, r[0], r[1], r[2], c.causal, scale, want);
            check("attention, scores far below zero, " + c, ref.download(want), be.download(out), 1e-4);

            Heads[] gGrad = upload(be, c, filled(c, Float.NaN)), rGrad = upload(ref, c, filled(c, 0));
            be.attentionBackward(PACKING, g[0], g[1], g[2], c.causal, scale, be.upload(dOut, t, width), gGrad[0], gGrad[1], gGrad[2]);
            ref.attentionBackward(PACKING, r[0], r[1], r[2], c.causal, scale, ref.upload(dOut, t, width), rGrad[0], rGrad[1], rGrad[2]);
            float[][] wantGrad = download(ref, rGrad), got = download(be, gGrad);
            String[] names = {"dq", "dk", "dv"};
            for (int i = 0; i < 3; i++) check("attentionBackward " + names[i] + ", scores far below zero, " + c, wantGrad[i], got[i], 1e-3);
        }
    }

    @Test
    void headsOfMoreThan128DimsAreRefused() {
        Packing p = Packing.of(List.of(new int[2]));
        try (CudaBackend be = CudaParity.backend()) {
            Heads q = Heads.packed(be.allocate(2, 130), 1, 130), k = Heads.packed(be.allocate(2, 130), 1, 130);
            assertThrows(IllegalArgumentException.class, () -> be.attention(p, q, k, k, true, 1f, be.allocate(2, 130)));
        }
    }

    /**
     * cacheAppend and cachedAttention against causal attention over the same tokens: a prefill of all but each
     * sequence's last token into slots given in another order (past the written positions the cache holds NaN),
     * then a decode step that appends each last token at its position and attends. GQA 4/2 heads of 40, k and v
     * interleaved in one tensor; one sequence of 300 tokens crosses the kernel's 256-position chunks.
     */
    @Test
    void cachedAttentionEqualsCausalAttention() {
        Random random = new Random();
        int heads = 4, kvHeads = 2, dim = 40, capacity = 303;
        int[] lengths = {1, 5, 300, 70};
        int[] slots = {3, 0, 4, 1};
        Packing full = Packing.of(Arrays.stream(lengths).mapToObj(int[]::new).toList());
        int t = full.tokens();
        float[] q = scaled(gaussian(random, t * heads * dim), 1.5f), kv = scaled(gaussian(random, t * 2 * kvHeads * dim), 1.5f);
        float scale = (float) (1 / Math.sqrt(dim));
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor kvr = ref.upload(kv, t, 2 * kvHeads * dim), want = ref.allocate(t, heads * dim);
            ref.attention(full, Heads.packed(ref.upload(q, t, heads * dim), heads, dim), new Heads(kvr, 0, 2 * dim, kvHeads, dim),
                    new Heads(kvr, dim, 2 * dim, kvHeads, dim), true, scale, want);
            float[] expected = ref.download(want);

            // the prefill: rows of each sequence but its last, as their own packing (sequences of 1 token drop out)
            List<int[]> prefillRows = new ArrayList<>();
            List<Integer> prefillSlots = new ArrayList<>(), lastRows = new ArrayList<>();
            for (int s = 0; s < lengths.length; s++) {
                int last = full.start(s) + lengths[s] - 1;
                lastRows.add(last);
                if (lengths[s] == 1) continue;
                int[] rows = new int[lengths[s] - 1];
                for (int i = 0; i < rows.length; i++) rows[i] = full.start(s) + i;
                prefillRows.add(rows);
                prefillSlots.add(slots[s]);
            }
            Tensor keys = be.upload(nans(5 * kvHeads * dim * capacity), 5 * kvHeads * dim, capacity);
            Tensor values = be.upload(nans(5 * capacity * kvHeads * dim), 5 * capacity, kvHeads * dim);
            attendCached(be, full, prefillRows, prefillSlots.stream().mapToInt(Integer::intValue).toArray(), q, kv, heads, kvHeads, dim, scale,
                    keys, values, expected, "prefill");

            float[] cachedKeys = be.download(keys), cachedValues = be.download(values);
            for (int s = 0; s < lengths.length; s++)
                for (int pos = 0; pos < lengths[s] - 1; pos++)
                    for (int g = 0; g < kvHeads; g++)
                        for (int e = 0; e < dim; e++) {
                            int at = (full.start(s) + pos) * 2 * kvHeads * dim + g * 2 * dim + e;
                            assertEquals(kv[at], cachedKeys[((slots[s] * kvHeads + g) * dim + e) * capacity + pos], "cached key");
                            assertEquals(kv[at + dim], cachedValues[(slots[s] * capacity + pos) * kvHeads * dim + g * dim + e], "cached value");
                        }

            List<int[]> decodeRows = lastRows.stream().map(r -> new int[] {r}).toList();
            attendCached(be, full, decodeRows, slots, q, kv, heads, kvHeads, dim, scale, keys, values, expected, "decode step");

            Packing one = Packing.of(List.of(new int[1]));
            Tensor row = be.allocate(1, heads * dim);
            Heads qh = Heads.packed(row, heads, dim);
            assertThrows(IllegalArgumentException.class, () -> be.cachedAttention(one, qh, keys, values, new int[] {5}, scale, row),
                    "a slot outside the cache");
        }
    }

    /**
     * Appends the k, v of the given rows of the full batch (each list entry one sequence, at the positions the rows
     * have in {@code full}) to the slots, attends them from the cache and compares with {@code expected} at those rows.
     */
    private static void attendCached(CudaBackend be, Packing full, List<int[]> sequences, int[] slots, float[] q, float[] kv, int heads, int kvHeads,
                                     int dim, float scale, Tensor keys, Tensor values, float[] expected, String what) {
        int n = sequences.stream().mapToInt(r -> r.length).sum(), qWidth = heads * dim, kvWidth = 2 * kvHeads * dim;
        int[] starts = new int[sequences.size() + 1], positions = new int[n];
        float[] qRows = new float[n * qWidth], kvRows = new float[n * kvWidth], want = new float[n * qWidth];
        int at = 0;
        for (int s = 0; s < sequences.size(); s++) {
            int[] rows = sequences.get(s);
            for (int i = 0; i < rows.length; i++, at++) {
                positions[at] = full.positions()[rows[i]];
                System.arraycopy(q, rows[i] * qWidth, qRows, at * qWidth, qWidth);
                System.arraycopy(kv, rows[i] * kvWidth, kvRows, at * kvWidth, kvWidth);
                System.arraycopy(expected, rows[i] * qWidth, want, at * qWidth, qWidth);
            }
            starts[s + 1] = at;
        }
        Packing p = new Packing(starts, positions);
        Tensor kvt = be.upload(kvRows, n, kvWidth), out = be.upload(nans(n * qWidth), n, qWidth);
        be.cacheAppend(p, new Heads(kvt, 0, 2 * dim, kvHeads, dim), new Heads(kvt, dim, 2 * dim, kvHeads, dim), slots, keys, values);
        be.cachedAttention(p, Heads.packed(be.upload(qRows, n, qWidth), heads, dim), keys, values, slots, scale, out);
        check("cachedAttention, " + what, want, be.download(out), 2e-5);
    }
}
