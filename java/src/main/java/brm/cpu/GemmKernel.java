package brm.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register-blocked micro-kernel of {@link Gemm}: one MR×NR tile as kc rank-1 updates,
 *
 *   tile[r, j] = Σ_{p < kc} a[r, p] · b[p, j]          r < MR, j < NR
 *
 * a is an A micro-panel, MR rows at stride KC ([MR][KC], so a[r, p] sits at a constant
 * displacement r·KC from p); b is a B micro-panel, k-major [kc][NR]. Each step loads the NR = 2
 * vectors b[p, :], broadcasts the MR values a[:, p] and issues MR·2 FMAs into 24 accumulators.
 *
 * Register use decides the speed, so the shape of this code is deliberate (each choice was
 * checked on the C2 disassembly and timed alone, B streaming from L2):
 *  - the accumulators are named locals, not an array: 24 of them + 2 b vectors + broadcast
 *    temporaries fit the 32 zmm registers (14 rows would spill one accumulator per step);
 *  - the loop takes two steps per trip (C2 does not unroll a body this large, and the loop's
 *    integer work otherwise crowds the 4-wide front end), so kc must be even: the packers pad
 *    an odd depth with a zero step;
 *  - the loop test is p + 1 < kc: C2 then keeps four range checks in the loop instead of
 *    predicating them, and allocates every accumulator to a register; with p < kc it spills
 *    two accumulators to the stack each trip (about 100 instead of 120 GFLOP/s).
 */
final class GemmKernel {
    private GemmKernel() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Lanes per vector (16 with AVX-512). */
    static final int L = F.length();
    /** Tile rows (broadcast from A) and columns (two vectors of B). */
    static final int MR = 12, NR = 2 * L;
    /** Rows of {@link #tile4}, the kernel of micro-panels with at most this many rows. */
    static final int MR_SMALL = 4;
    /** Depth of one k block: the stride between the rows of a packed A micro-panel. */
    static final int KC = 256;

    /** tile[MR, NR] (row-major) = a[MR, kc] (at aOff, row stride KC) · b[kc, NR] (at bOff, row stride NR); kc even. */
    static void tile(int kc, float[] a, int aOff, float[] b, int bOff, float[] tile) {
        FloatVector c00a = FloatVector.zero(F), c00b = FloatVector.zero(F);
        FloatVector c01a = FloatVector.zero(F), c01b = FloatVector.zero(F);
        FloatVector c02a = FloatVector.zero(F), c02b = FloatVector.zero(F);
        FloatVector c03a = FloatVector.zero(F), c03b = FloatVector.zero(F);
        FloatVector c04a = FloatVector.zero(F), c04b = FloatVector.zero(F);
        FloatVector c05a = FloatVector.zero(F), c05b = FloatVector.zero(F);
        FloatVector c06a = FloatVector.zero(F), c06b = FloatVector.zero(F);
        FloatVector c07a = FloatVector.zero(F), c07b = FloatVector.zero(F);
        FloatVector c08a = FloatVector.zero(F), c08b = FloatVector.zero(F);
        FloatVector c09a = FloatVector.zero(F), c09b = FloatVector.zero(F);
        FloatVector c10a = FloatVector.zero(F), c10b = FloatVector.zero(F);
        FloatVector c11a = FloatVector.zero(F), c11b = FloatVector.zero(F);
        for (int p = 0; p + 1 < kc; p += 2) {
            {
                int ai = aOff + p, bi = bOff + p * NR;
                FloatVector b0 = FloatVector.fromArray(F, b, bi), b1 = FloatVector.fromArray(F, b, bi + L);
                FloatVector a00 = FloatVector.broadcast(F, a[ai]);
                c00a = a00.fma(b0, c00a); c00b = a00.fma(b1, c00b);
                FloatVector a01 = FloatVector.broadcast(F, a[ai + KC]);
                c01a = a01.fma(b0, c01a); c01b = a01.fma(b1, c01b);
                FloatVector a02 = FloatVector.broadcast(F, a[ai + 2 * KC]);
                c02a = a02.fma(b0, c02a); c02b = a02.fma(b1, c02b);
                FloatVector a03 = FloatVector.broadcast(F, a[ai + 3 * KC]);
                c03a = a03.fma(b0, c03a); c03b = a03.fma(b1, c03b);
                FloatVector a04 = FloatVector.broadcast(F, a[ai + 4 * KC]);
                c04a = a04.fma(b0, c04a); c04b = a04.fma(b1, c04b);
                FloatVector a05 = FloatVector.broadcast(F, a[ai + 5 * KC]);
                c05a = a05.fma(b0, c05a); c05b = a05.fma(b1, c05b);
                FloatVector a06 = FloatVector.broadcast(F, a[ai + 6 * KC]);
                c06a = a06.fma(b0, c06a); c06b = a06.fma(b1, c06b);
                FloatVector a07 = FloatVector.broadcast(F, a[ai + 7 * KC]);
                c07a = a07.fma(b0, c07a); c07b = a07.fma(b1, c07b);
                FloatVector a08 = FloatVector.broadcast(F, a[ai + 8 * KC]);
                c08a = a08.fma(b0, c08a); c08b = a08.fma(b1, c08b);
                FloatVector a09 = FloatVector.broadcast(F, a[ai + 9 * KC]);
                c09a = a09.fma(b0, c09a); c09b = a09.fma(b1, c09b);
                FloatVector a10 = FloatVector.broadcast(F, a[ai + 10 * KC]);
                c10a = a10.fma(b0, c10a); c10b = a10.fma(b1, c10b);
                FloatVector a11 = FloatVector.broadcast(F, a[ai + 11 * KC]);
                c11a = a11.fma(b0, c11a); c11b = a11.fma(b1, c11b);
            }
            {
                int ai = aOff + p + 1, bi = bOff + (p + 1) * NR;
                FloatVector b0 = FloatVector.fromArray(F, b, bi), b1 = FloatVector.fromArray(F, b, bi + L);
                FloatVector a00 = FloatVector.broadcast(F, a[ai]);
                c00a = a00.fma(b0, c00a); c00b = a00.fma(b1, c00b);
                FloatVector a01 = FloatVector.broadcast(F, a[ai + KC]);
                c01a = a01.fma(b0, c01a); c01b = a01.fma(b1, c01b);
                FloatVector a02 = FloatVector.broadcast(F, a[ai + 2 * KC]);
                c02a = a02.fma(b0, c02a); c02b = a02.fma(b1, c02b);
                FloatVector a03 = FloatVector.broadcast(F, a[ai + 3 * KC]);
                c03a = a03.fma(b0, c03a); c03b = a03.fma(b1, c03b);
                FloatVector a04 = FloatVector.broadcast(F, a[ai + 4 * KC]);
                c04a = a04.fma(b0, c04a); c04b = a04.fma(b1, c04b);
                FloatVector a05 = FloatVector.broadcast(F, a[ai + 5 * KC]);
                c05a = a05.fma(b0, c05a); c05b = a05.fma(b1, c05b);
                FloatVector a06 = FloatVector.broadcast(F, a[ai + 6 * KC]);
                c06a = a06.fma(b0, c06a); c06b = a06.fma(b1, c06b);
                FloatVector a07 = FloatVector.broadcast(F, a[ai + 7 * KC]);
                c07a = a07.fma(b0, c07a); c07b = a07.fma(b1, c07b);
                FloatVector a08 = FloatVector.broadcast(F, a[ai + 8 * KC]);
                c08a = a08.fma(b0, c08a); c08b = a08.fma(b1, c08b);
                FloatVector a09 = FloatVector.broadcast(F, a[ai + 9 * KC]);
                c09a = a09.fma(b0, c09a); c09b = a09.fma(b1, c09b);
                FloatVector a10 = FloatVector.broadcast(F, a[ai + 10 * KC]);
                c10a = a10.fma(b0, c10a); c10b = a10.fma(b1, c10b);
                FloatVector a11 = FloatVector.broadcast(F, a[ai + 11 * KC]);
                c11a = a11.fma(b0, c11a); c11b = a11.fma(b1, c11b);
            }
        }
        c00a.intoArray(tile, 0); c00b.intoArray(tile, L);
        c01a.intoArray(tile, NR); c01b.intoArray(tile, NR + L);
        c02a.intoArray(tile, 2 * NR); c02b.intoArray(tile, 2 * NR + L);
        c03a.intoArray(tile, 3 * NR); c03b.intoArray(tile, 3 * NR + L);
        c04a.intoArray(tile, 4 * NR); c04b.intoArray(tile, 4 * NR + L);
        c05a.intoArray(tile, 5 * NR); c05b.intoArray(tile, 5 * NR + L);
        c06a.intoArray(tile, 6 * NR); c06b.intoArray(tile, 6 * NR + L);
        c07a.intoArray(tile, 7 * NR); c07b.intoArray(tile, 7 * NR + L);
        c08a.intoArray(tile, 8 * NR); c08b.intoArray(tile, 8 * NR + L);
        c09a.intoArray(tile, 9 * NR); c09b.intoArray(tile, 9 * NR + L);
        c10a.intoArray(tile, 10 * NR); c10b.intoArray(tile, 10 * NR + L);
        c11a.intoArray(tile, 11 * NR); c11b.intoArray(tile, 11 * NR + L);
    }

    /**
     * The first MR_SMALL rows of {@link #tile}, for a micro-panel of at most MR_SMALL rows (a decoding step's
     * few rows would otherwise pay for MR): each accumulator takes the same fmas in the same order as in
     * tile, so every element has the same bits whichever kernel computes it.
     */
    static void tile4(int kc, float[] a, int aOff, float[] b, int bOff, float[] tile) {
        FloatVector c00a = FloatVector.zero(F), c00b = FloatVector.zero(F);
        FloatVector c01a = FloatVector.zero(F), c01b = FloatVector.zero(F);
        FloatVector c02a = FloatVector.zero(F), c02b = FloatVector.zero(F);
        FloatVector c03a = FloatVector.zero(F), c03b = FloatVector.zero(F);
        for (int p = 0; p + 1 < kc; p += 2) {
            for (int step = 0; step < 2; step++) {
                int ai = aOff + p + step, bi = bOff + (p + step) * NR;
                FloatVector b0 = FloatVector.fromArray(F, b, bi), b1 = FloatVector.fromArray(F, b, bi + L);
                FloatVector a00 = FloatVector.broadcast(F, a[ai]);
                c00a = a00.fma(b0, c00a); c00b = a00.fma(b1, c00b);
                FloatVector a01 = FloatVector.broadcast(F, a[ai + KC]);
                c01a = a01.fma(b0, c01a); c01b = a01.fma(b1, c01b);
                FloatVector a02 = FloatVector.broadcast(F, a[ai + 2 * KC]);
                c02a = a02.fma(b0, c02a); c02b = a02.fma(b1, c02b);
                FloatVector a03 = FloatVector.broadcast(F, a[ai + 3 * KC]);
                c03a = a03.fma(b0, c03a); c03b = a03.fma(b1, c03b);
            }
        }
        c00a.intoArray(tile, 0); c00b.intoArray(tile, L);
        c01a.intoArray(tile, NR); c01b.intoArray(tile, NR + L);
        c02a.intoArray(tile, 2 * NR); c02b.intoArray(tile, 2 * NR + L);
        c03a.intoArray(tile, 3 * NR); c03b.intoArray(tile, 3 * NR + L);
    }
}
