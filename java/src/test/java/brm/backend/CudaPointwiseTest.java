package brm.backend;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static brm.backend.CudaParity.assertClose;
import static brm.backend.CudaParity.gaussian;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The CUDA backend's non-GEMM, non-attention ops (norms, activations, rotary, embeddings, pooling, dropout)
 * against the reference backend (FP64) or the CPU backend (FP32), on fresh random inputs of odd sizes,
 * every aliasing the contract allows and every branch.
 */
class CudaPointwiseTest {
    private static final float EPS = 1e-5f;
    /** Above the few ulps by which CUDA's erfcf and expf may differ from correctly rounded ones. */
    private static final double ACTIVATION_TOLERANCE = 4e-6;

    /** Random shifted, scaled rows, so that the norms' mean and variance matter. */
    private static float[] rows(Random random, int rows, int cols) {
        float[] v = gaussian(random, rows * cols);
        for (int r = 0; r < rows; r++) {
            float shift = (float) random.nextGaussian(), scale = (float) Math.exp(0.5 * random.nextGaussian());
            for (int c = 0; c < cols; c++) v[r * cols + c] = shift + scale * v[r * cols + c];
        }
        return v;
    }

    private static float[] scaled(float[] v, float by) {
        float[] s = v.clone();
        for (int i = 0; i < s.length; i++) s[i] *= by;
        return s;
    }

    /** A packing of random lengths in [1, maxLength], positions from 0 in each sequence. */
    private static Packing packing(Random random, int seqs, int maxLength) {
        List<int[]> sequences = new ArrayList<>();
        for (int s = 0; s < seqs; s++) sequences.add(new int[random.nextInt(1, maxLength + 1)]);
        return Packing.of(sequences);
    }

    @Test
    void layerNormMatchesTheReferenceInPlaceAndNot() {
        Random random = new Random();
        int rows = random.nextInt(1, 21), cols = random.nextInt(1, 200);
        float[] x = rows(random, rows, cols), w = gaussian(random, cols), b = gaussian(random, cols);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor expected = ref.allocate(rows, cols);
            ref.layerNorm(ref.upload(x, rows, cols), ref.upload(w, 1, cols), ref.upload(b, 1, cols), EPS, expected);
            Tensor gx = be.upload(x, rows, cols), gw = be.upload(w, 1, cols), gb = be.upload(b, 1, cols), out = be.allocate(rows, cols);
            be.layerNorm(gx, gw, gb, EPS, out);
            assertClose("layerNorm", ref.download(expected), be.download(out), 1e-5);
            be.layerNorm(gx, gw, gb, EPS, gx);
            assertClose("layerNorm in place", ref.download(expected), be.download(gx), 1e-5);
            assertThrows(IllegalArgumentException.class, () -> be.layerNorm(gx, gw, be.allocate(1, cols + 1), EPS, out));
        }
    }

    @Test
    void layerNormBackwardAccumulatesLikeTheReference() {
        Random random = new Random();
        int rows = random.nextInt(1, 21), cols = random.nextInt(2, 200);
        float[] x = rows(random, rows, cols), w = gaussian(random, cols), dy = gaussian(random, rows * cols), dx0 = gaussian(random, rows * cols);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor expected = ref.upload(dx0, rows, cols);
            ref.layerNormBackward(ref.upload(x, rows, cols), ref.upload(w, 1, cols), EPS, ref.upload(dy, rows, cols), expected);
            Tensor dx = be.upload(dx0, rows, cols);
            be.layerNormBackward(be.upload(x, rows, cols), be.upload(w, 1, cols), EPS, be.upload(dy, rows, cols), dx);
            assertClose("layerNormBackward", ref.download(expected), be.download(dx), 2e-5);
        }
    }

    @Test
    void rmsNormMatchesTheCpuInPlaceAndNot() {
        Random random = new Random();
        int rows = random.nextInt(1, 21), cols = random.nextInt(1, 200);
        float[] x = rows(random, rows, cols), w = gaussian(random, cols);
        try (CudaBackend be = CudaParity.backend(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor expected = cpu.allocate(rows, cols);
            cpu.rmsNorm(cpu.upload(x, rows, cols), cpu.upload(w, 1, cols), EPS, expected);
            Tensor gx = be.upload(x, rows, cols), gw = be.upload(w, 1, cols), out = be.allocate(rows, cols);
            be.rmsNorm(gx, gw, EPS, out);
            assertClose("rmsNorm", cpu.download(expected), be.download(out), 2e-6);
            be.rmsNorm(gx, gw, EPS, gx);
            assertClose("rmsNorm in place", cpu.download(expected), be.download(gx), 2e-6);
        }
    }

    @Test
    void rmsNormBackwardAccumulatesLikeTheReference() {
        Random random = new Random();
        int rows = random.nextInt(1, 21), cols = random.nextInt(1, 200);
        float[] x = rows(random, rows, cols), w = gaussian(random, cols), dy = gaussian(random, rows * cols), dx0 = gaussian(random, rows * cols);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor expected = ref.upload(dx0, rows, cols);
            ref.rmsNormBackward(ref.upload(x, rows, cols), ref.upload(w, 1, cols), EPS, ref.upload(dy, rows, cols), expected);
            Tensor dx = be.upload(dx0, rows, cols);
            be.rmsNormBackward(be.upload(x, rows, cols), be.upload(w, 1, cols), EPS, be.upload(dy, rows, cols), dx);
            assertClose("rmsNormBackward", ref.download(expected), be.download(dx), 2e-5);
        }
    }

    @Test
    void geluAndItsBackwardMatchTheReferenceIntoTheTails() {
        Random random = new Random();
        int rows = random.nextInt(1, 30), cols = random.nextInt(1, 150);
        float[] x = scaled(gaussian(random, rows * cols), 4), dy = gaussian(random, rows * cols);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor y = ref.allocate(rows, cols), dx = ref.allocate(rows, cols), rx = ref.upload(x, rows, cols);
            ref.gelu(rx, y);
            ref.geluBackward(rx, ref.upload(dy, rows, cols), dx);
            Tensor gx = be.upload(x, rows, cols), out = be.allocate(rows, cols), gdy = be.upload(dy, rows, cols), gdx = be.allocate(rows, cols);
            be.gelu(gx, out);
            assertClose("gelu", ref.download(y), be.download(out), ACTIVATION_TOLERANCE);
            be.geluBackward(gx, gdy, gdx);
            assertClose("geluBackward", ref.download(dx), be.download(gdx), ACTIVATION_TOLERANCE);
            be.geluBackward(gx, gdy, gdy);  // dx = dy
            assertClose("geluBackward into dy", ref.download(dx), be.download(gdy), ACTIVATION_TOLERANCE);
            be.gelu(gx, gx);
            assertClose("gelu in place", ref.download(y), be.download(gx), ACTIVATION_TOLERANCE);
        }
    }

    @Test
    void geluKeepsTheRelativePrecisionOfTheLowerTail() {
        float[] x = {-3, -5, -7, -9, -12};
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor y = ref.allocate(1, x.length), out = be.allocate(1, x.length);
            ref.gelu(ref.upload(x, 1, x.length), y);
            be.gelu(be.upload(x, 1, x.length), out);
            float[] expected = ref.download(y), got = be.download(out);
            for (int i = 0; i < x.length; i++)
                assertEquals(expected[i], got[i], 1e-5 * Math.abs(expected[i]), "gelu(" + x[i] + ")");
        }
    }

    @Test
    void siluMulAndItsBackwardMatchTheReferenceWithEveryAllowedAlias() {
        Random random = new Random();
        int rows = random.nextInt(1, 30), cols = random.nextInt(1, 150), n = rows * cols;
        float[] gate = scaled(gaussian(random, n), 5), up = gaussian(random, n), dy = gaussian(random, n);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            Tensor y = ref.allocate(rows, cols), dg = ref.allocate(rows, cols), du = ref.allocate(rows, cols);
            Tensor rg = ref.upload(gate, rows, cols), ru = ref.upload(up, rows, cols);
            ref.siluMul(rg, ru, y);
            ref.siluMulBackward(rg, ru, ref.upload(dy, rows, cols), dg, du);
            float[] expected = ref.download(y), expectedGate = ref.download(dg), expectedUp = ref.download(du);

            Tensor gg = be.upload(gate, rows, cols), gu = be.upload(up, rows, cols), out = be.allocate(rows, cols);
            be.siluMul(gg, gu, out);
            assertClose("siluMul", expected, be.download(out), ACTIVATION_TOLERANCE);
            Tensor gdy = be.upload(dy, rows, cols), gdg = be.allocate(rows, cols), gdu = be.allocate(rows, cols);
            be.siluMulBackward(gg, gu, gdy, gdg, gdu);
            assertClose("siluMulBackward dGate", expectedGate, be.download(gdg), ACTIVATION_TOLERANCE);
            assertClose("siluMulBackward dUp", expectedUp, be.download(gdu), ACTIVATION_TOLERANCE);
            be.siluMulBackward(gg, gu, gdy, gdy, gdu);  // dGate = dy
            assertClose("siluMulBackward dGate into dy", expectedGate, be.download(gdy), ACTIVATION_TOLERANCE);
            assertClose("siluMulBackward dUp beside dGate = dy", expectedUp, be.download(gdu), ACTIVATION_TOLERANCE);
            be.write(dy, gdy);
            be.siluMulBackward(gg, gu, gdy, gdg, gdy);  // dUp = dy
            assertClose("siluMulBackward dUp into dy", expectedUp, be.download(gdy), ACTIVATION_TOLERANCE);
            assertClose("siluMulBackward dGate beside dUp = dy", expectedGate, be.download(gdg), ACTIVATION_TOLERANCE);

            be.siluMul(gg, gu, gu);  // out = up
            assertClose("siluMul into up", expected, be.download(gu), ACTIVATION_TOLERANCE);
            be.write(up, gu);
            be.siluMul(gg, gu, gg);  // out = gate
            assertClose("siluMul into gate", expected, be.download(gg), ACTIVATION_TOLERANCE);
        }
    }

    /**
     * Rotary on GPT-NeoX's fused qkv layout (heads interleaved: stride 3D, q at offset 0, k at D) over a partial
     * rotary width, then on packed Llama-style heads over the whole head, forward and inverse, at positions
     * that do not start at 0 (a decode batch) as well as from 0.
     */
    @Test
    void rotaryMatchesTheReferenceOnStridedAndPackedHeads() {
        Random random = new Random();
        int heads = random.nextInt(1, 5), dim = 2 * random.nextInt(2, 12), maxPositions = 40;
        Packing prompt = packing(random, random.nextInt(1, 5), 12);
        int[] decodePositions = new int[random.nextInt(1, 6)], decodeStarts = new int[decodePositions.length + 1];
        for (int s = 0; s < decodePositions.length; s++) {
            decodePositions[s] = random.nextInt(maxPositions);
            decodeStarts[s + 1] = s + 1;
        }
        Packing decode = new Packing(decodeStarts, decodePositions);
        float[] cos = gaussian(random, maxPositions * dim / 2), sin = gaussian(random, maxPositions * dim / 2);
        try (CudaBackend be = CudaParity.backend(); ReferenceBackend ref = new ReferenceBackend()) {
            for (Packing p : List.of(prompt, decode))
                for (boolean inverse : new boolean[]{false, true}) {
                    int rotated = 2 * random.nextInt(1, dim / 2 + 1);  // partial (GPT-NeoX rotary_pct) or whole
                    float[] qkv = gaussian(random, p.tokens() * 3 * heads * dim);
                    int cols = 3 * heads * dim, tokens = p.tokens(), half = rotated / 2;
                    Tensor rx = ref.upload(qkv, tokens, cols);
                    Tensor gx = be.upload(qkv, tokens, cols);
                    // tables of exactly `half` columns: the first half of each cos/sin row
                    float[] c = new float[maxPositions * half], s = new float[maxPositions * half];
                    for (int pos = 0; pos < maxPositions; pos++) {
                        System.arraycopy(cos, pos * dim / 2, c, pos * half, half);
                        System.arraycopy(sin, pos * dim / 2, s, pos * half, half);
                    }
                    for (int offset : new int[]{0, dim}) {
                        ref.rotary(p, new Heads(rx, offset, 3 * dim, heads, dim), rotated, ref.upload(c, maxPositions, half), ref.upload(s, maxPositions, half), inverse);
                        be.rotary(p, new Heads(gx, offset, 3 * dim, heads, dim), rotated, be.upload(c, maxPositions, half), be.upload(s, maxPositions, half), inverse);
                    }
                    assertClose("rotary fused qkv, " + rotated + " of " + dim + (inverse ? ", inverse" : ""), ref.download(rx), be.download(gx), 2e-6);

                    float[] q = gaussian(random, tokens * heads * dim);
                    Tensor rq = ref.upload(q, tokens, heads * dim), gq = be.upload(q, tokens, heads * dim);
                    ref.rotary(p, Heads.packed(rq, heads, dim), dim, ref.upload(cos, maxPositions, dim / 2), ref.upload(sin, maxPositions, dim / 2), inverse);
                    Tensor gc = be.upload(cos, maxPositions, dim / 2), gs = be.upload(sin, maxPositions, dim / 2);
                    be.rotary(p, Heads.packed(gq, heads, dim), dim, gc, gs, inverse);
                    assertClose("rotary packed" + (inverse ? ", inverse" : ""), ref.download(rq), be.download(gq), 2e-6);
                }
            Tensor x = be.allocate(prompt.tokens(), dim);
            assertThrows(IllegalArgumentException.class, () -> be.rotary(prompt, Heads.packed(x, 1, dim), dim, be.allocate(prompt.maxLength() - 1, dim / 2),
                    be.allocate(prompt.maxLength() - 1, dim / 2), false));
        }
    }

    @Test
    void rotaryInverseUndoesTheRotation() {
        Random random = new Random();
        int heads = random.nextInt(1, 4), dim = 2 * random.nextInt(1, 10), maxPositions = 30;
        Packing p = packing(random, random.nextInt(1, 4), maxPositions);
        float[] angles = new float[maxPositions * dim / 2], cos = new float[angles.length], sin = new float[angles.length];
        for (int i = 0; i < angles.length; i++) {
            double a = random.nextDouble(-Math.PI, Math.PI);
            cos[i] = (float) Math.cos(a);
            sin[i] = (float) Math.sin(a);
        }
        float[] q = gaussian(random, p.tokens() * heads * dim);
        try (CudaBackend be = CudaParity.backend()) {
            Tensor gq = be.upload(q, p.tokens(), heads * dim), gc = be.upload(cos, maxPositions, dim / 2), gs = be.upload(sin, maxPositions, dim / 2);
            be.rotary(p, Heads.packed(gq, heads, dim), dim, gc, gs, false);
            be.rotary(p, Heads.packed(gq, heads, dim), dim, gc, gs, true);
            assertClose("rotary then its inverse", q, be.download(gq), 2e-6);
        }
    }

    @Test
    void embedAndAddPositionsMatchTheCpu() {
        Random random = new Random();
        int vocab = random.nextInt(2, 60), cols = random.nextInt(1, 100), maxPositions = 25;
        Packing p = packing(random, random.nextInt(1, 5), maxPositions);
        int[] ids = new int[p.tokens()];
        for (int i = 0; i < ids.length; i++) ids[i] = random.nextInt(vocab);
        float[] table = gaussian(random, vocab * cols), positions = gaussian(random, maxPositions * cols);
        try (CudaBackend be = CudaParity.backend(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor expected = cpu.allocate(p.tokens(), cols);
            cpu.embed(ids, cpu.upload(table, vocab, cols), expected);
            Tensor out = be.allocate(p.tokens(), cols), gTable = be.upload(table, vocab, cols);
            be.embed(ids, gTable, out);
            assertClose("embed", cpu.download(expected), be.download(out), 0);
            cpu.addPositions(p, cpu.upload(positions, maxPositions, cols), expected);
            be.addPositions(p, be.upload(positions, maxPositions, cols), out);
            assertClose("addPositions", cpu.download(expected), be.download(out), 0);
            int[] bad = ids.clone();
            bad[random.nextInt(bad.length)] = vocab;
            assertThrows(IllegalArgumentException.class, () -> be.embed(bad, gTable, out));
            assertThrows(IllegalArgumentException.class, () -> be.addPositions(p, be.allocate(p.maxLength() - 1, cols), out));
        }
    }

    /** Every pooling on sequences of varied lengths (1 included), forward and backward; dx starts as garbage, so "0 elsewhere" is checked. */
    @Test
    void poolingMatchesTheCpuBothWays() {
        Random random = new Random();
        int cols = random.nextInt(1, 80);
        List<int[]> sequences = new ArrayList<>();
        sequences.add(new int[1]);
        for (int s = random.nextInt(1, 6); s > 0; s--) sequences.add(new int[random.nextInt(1, 20)]);
        Collections.shuffle(sequences, random);
        Packing p = Packing.of(sequences);
        float[] x = gaussian(random, p.tokens() * cols), dPooled = gaussian(random, p.seqs() * cols);
        try (CudaBackend be = CudaParity.backend(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor gx = be.upload(x, p.tokens(), cols), gd = be.upload(dPooled, p.seqs(), cols);
            for (Pooling how : Pooling.values()) {
                Tensor expected = cpu.allocate(p.seqs(), cols), expectedDx = cpu.allocate(p.tokens(), cols);
                cpu.pool(p, cpu.upload(x, p.tokens(), cols), how, expected);
                cpu.poolBackward(p, how, cpu.upload(dPooled, p.seqs(), cols), expectedDx);
                Tensor out = be.upload(gaussian(random, p.seqs() * cols), p.seqs(), cols);
                be.pool(p, gx, how, out);
                assertClose("pool " + how, cpu.download(expected), be.download(out), 1e-6);
                Tensor dx = be.upload(gaussian(random, p.tokens() * cols), p.tokens(), cols);
                be.poolBackward(p, how, gd, dx);
                assertClose("poolBackward " + how, cpu.download(expectedDx), be.download(dx), 0);
            }
            assertThrows(IllegalArgumentException.class, () -> be.pool(p, gx, Pooling.MEAN, be.allocate(p.seqs() + 1, cols)));
        }
    }

    /** The CUDA mask keeps exactly the elements DropoutMask keeps, each scaled exactly as the CPU scales it. */
    @Test
    void dropoutKeepsExactlyTheElementsOfDropoutMask() {
        Random random = new Random();
        int rows = random.nextInt(1, 40), cols = random.nextInt(1, 130), n = rows * cols;
        float[] x = gaussian(random, n);
        for (int i = 0; i < n; i++) if (x[i] == 0) x[i] = 1;  // a dropped element reads 0, a kept one never does
        try (CudaBackend be = CudaParity.backend(); CpuBackend cpu = new CpuBackend(1)) {
            for (float p : new float[]{0f, 0.1f, 0.5f, random.nextFloat(0.01f, 0.99f)}) {
                long seed = random.nextLong();
                Tensor gx = be.upload(x, rows, cols), out = be.allocate(rows, cols);
                be.dropout(gx, p, seed, out);
                float[] got = be.download(out), expected = new float[n];
                cpu.download(cpuDropout(cpu, x, rows, cols, p, seed), expected);
                int kept = 0;
                for (int i = 0; i < n; i++) {
                    assertEquals(DropoutMask.keep(seed, i, p), got[i] != 0, "dropout p " + p + " seed " + seed + ": element " + i);
                    if (got[i] != 0) kept++;
                }
                assertClose("dropout p " + p, expected, got, 0);
                be.dropout(gx, p, seed, gx);
                assertClose("dropout in place, p " + p, expected, be.download(gx), 0);
                if (p == 0) assertEquals(n, kept);
                if (p == 0.5f && n > 400) assertEquals(0.5, (double) kept / n, 0.1);
            }
        }
    }

    private static Tensor cpuDropout(CpuBackend cpu, float[] x, int rows, int cols, float p, long seed) {
        Tensor out = cpu.allocate(rows, cols);
        cpu.dropout(cpu.upload(x, rows, cols), p, seed, out);
        return out;
    }
}
