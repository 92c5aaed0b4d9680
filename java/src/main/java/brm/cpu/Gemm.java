package brm.cpu;

import static brm.cpu.GemmKernel.F;
import static brm.cpu.GemmKernel.KC;
import static brm.cpu.GemmKernel.L;
import static brm.cpu.GemmKernel.MR;
import static brm.cpu.GemmKernel.MR_SMALL;
import static brm.cpu.GemmKernel.NR;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * FP32 matrix products for the CPU backend.
 *
 *   linear: y[rows, out] = x[rows, in] · Wᵀ + b (+ beta · y)     W in nn.Linear layout [out, in]
 *   sgemm:  C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C    row-major, op(X) = X or Xᵀ
 *
 * Both run the GotoBLAS/BLIS blocking, loops from the outermost:
 *   rows    MC-row blocks of C
 *   depth   KC-deep blocks of k: the A block [MC, KC] is packed into MR-row micro-panels (L3)
 *   columns NC-column blocks: the B block [KC, NC] in NR-column micro-panels stays in L2;
 *           linear's W is packed this way once by {@link #pack}, sgemm packs each B block
 *   tiles   one MR-row A micro-panel (kept in L1) against each NR-column B micro-panel:
 *           {@link GemmKernel} accumulates the MR×NR tile in registers over the block's depth
 *           (a last micro-panel of at most MR_SMALL rows, e.g. a decoding step's, runs the
 *           MR_SMALL-row kernel: same sums, a third of the work)
 * and each tile is added into C: on the first k block C = tile + beta·C (+ b), later C += tile.
 * alpha is folded into the packed A; edge tiles run on zero padding and store only their
 * in-range part. sgemm products under SMALL multiply-adds skip packing (direct vector loops), and
 * so do narrow ones, C with at most NARROW columns and A not transposed (LoRA's x·Aᵀ and dy·B,
 * [rows, r]): a tile would be mostly padding and packing A would copy all of it, so each C[i, j] is
 * a dot product along k of A's row i with a column of op(B), four columns per sweep of the row.
 * The Parallel overloads split C into one band of whole tiles per thread, along its longer side.
 */
public final class Gemm {
    private Gemm() {}

    /** Rows of C per block (the packed A block is MC·KC floats = 1.5 MiB, in L3). */
    static final int MC = 128 * MR;
    /** Columns of C per block (the packed B block is KC·NC floats = 512 KiB, half of L2). */
    static final int NC = 16 * NR;
    /** Below this many multiply-adds sgemm skips packing. */
    static final long SMALL = 1 << 16;
    /** At most this many columns of C take the narrow path. */
    static final int NARROW = L;

    /**
     * A weight [out, in] packed for repeated products: for each KC block of in, the B block
     * [KC, out] as sgemm would pack it (⌈out/NR⌉ panels of [even(kc)][NR], zero-padded), one
     * after the other, so that every B block the kernel sweeps is contiguous.
     */
    public static final class PackedWeight {
        final int out, in;
        final float[] panels;

        private PackedWeight(float[] panels, int out, int in) {
            this.panels = panels;
            this.out = out;
            this.in = in;
        }

        public int out() { return out; }
        public int in() { return in; }
    }

    /** Packs W [out, in] (row-major, nn.Linear layout); W is not kept. */
    public static PackedWeight pack(float[] w, int out, int in) {
        if (out < 0 || in < 0 || (long) out * in != w.length)
            throw new IllegalArgumentException("W has " + w.length + " values, not " + out + "x" + in);
        long size = (long) Math.ceilDiv(out, NR) * NR * even(in);
        if (size > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("W " + out + "x" + in + " is too large to pack");
        float[] panels = new float[(int) size];
        // Wᵀ is B[in, out]; as stored, W is B transposed with leading dimension in
        for (int pb = 0; pb < in; pb += KC) packB(w, 0, in, true, pb, Math.min(KC, in - pb), 0, out, panels, blockStart(pb, out));
        return new PackedWeight(panels, out, in);
    }

    /** y[rows, out] at yOff = x[rows, in] at xOff · Wᵀ (+ bias[out] when non-null); single thread. */
    public static void linear(float[] x, int xOff, int rows, PackedWeight w, float[] bias, float[] y, int yOff) {
        linear(CALLER, x, xOff, rows, w, bias, 0f, y, yOff);
    }

    /**
     * y[rows, out] at yOff = x[rows, in] at xOff · Wᵀ (+ bias[out] when non-null) + beta · y; single
     * thread. beta 1 accumulates (backward's dx += dy·W); beta 0 ignores y's contents.
     */
    public static void linear(float[] x, int xOff, int rows, PackedWeight w, float[] bias, float beta, float[] y, int yOff) {
        linear(CALLER, x, xOff, rows, w, bias, beta, y, yOff);
    }

    /** y[rows, out] at yOff = x[rows, in] at xOff · Wᵀ (+ bias[out] when non-null), on par's threads. */
    public static void linear(Parallel par, float[] x, int xOff, int rows, PackedWeight w, float[] bias, float[] y, int yOff) {
        linear(par, x, xOff, rows, w, bias, 0f, y, yOff);
    }

    private static void linear(Parallel par, float[] x, int xOff, int rows, PackedWeight w, float[] bias, float beta, float[] y, int yOff) {
        checkMatrix("x", x, xOff, rows, w.in, w.in);
        checkMatrix("y", y, yOff, rows, w.out, w.out);
        if (bias != null && bias.length < w.out)
            throw new IllegalArgumentException("bias has " + bias.length + " values, W has " + w.out + " outputs");
        run(par, new Product(rows, w.out, w.in, 1f, x, xOff, w.in, false, null, 0, 0, false, w.panels, beta, bias, y, yOff, w.out));
    }

    /**
     * C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, row-major with leading dimensions;
     * op(X) = Xᵀ when the flag is set. beta = 0 ignores C's old contents (NaN included). Single thread.
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        sgemm(CALLER, transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
    }

    /** {@link #sgemm(boolean, boolean, int, int, int, float, float[], int, int, float[], int, int, float, float[], int, int)} on par's threads. */
    public static void sgemm(Parallel par, boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("negative GEMM shape " + m + "x" + n + "x" + k);
        checkMatrix("A", a, aOff, transA ? k : m, transA ? m : k, lda);
        checkMatrix("B", b, bOff, transB ? n : k, transB ? k : n, ldb);
        checkMatrix("C", c, cOff, m, n, ldc);
        run(par, new Product(m, n, k, alpha, a, aOff, lda, transA, b, bOff, ldb, transB, null, beta, null, c, cOff, ldc));
    }

    /**
     * One call's operands: C[m, n] = alpha·op(A)·op(B) + beta·C (+ bias[n]); op(B) is either
     * (b, transB) or, when panels is non-null, a PackedWeight's panels covering all of k.
     */
    private record Product(int m, int n, int k, float alpha, float[] a, int aOff, int lda, boolean transA,
                           float[] b, int bOff, int ldb, boolean transB, float[] panels,
                           float beta, float[] bias, float[] c, int cOff, int ldc) {}

    /** The thread-less Parallel the single-thread entry points run on. */
    private static final Parallel CALLER = new Parallel(1);

    /** Per-thread packing buffers, allocated once per thread. */
    private static final class Scratch {
        final float[] a = new float[MC * KC];
        final float[] b = new float[KC * NC];
        final float[] tile = new float[MR * NR];
        /** One row of op(A) for the small path; grows to the largest k seen. */
        float[] row = new float[0];
        /** op(B)ᵀ for the narrow path, [n rounded up to 4][k]; grows on demand. */
        float[] columns = new float[0];
        /** The narrow path's four dot-product vectors, summed lane by lane from here (cheaper than extracting lanes). */
        final float[] sums = new float[4 * L];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static void run(Parallel par, Product p) {
        if (p.m == 0 || p.n == 0) return;
        if (p.k == 0 || p.alpha == 0f) {
            scaleOnly(p);
            return;
        }
        if (p.panels == null && (long) p.m * p.n * p.k < SMALL) {
            small(p, SCRATCH.get());
            return;
        }
        if (p.panels == null && p.n <= NARROW && !p.transA) {
            float[] columns = packColumns(p, SCRATCH.get());
            int bands = Math.min(par.threads(), p.m);
            par.forEach(bands, band -> narrow(p, columns, (int) ((long) p.m * band / bands), (int) ((long) p.m * (band + 1) / bands), SCRATCH.get().sums));
            return;
        }
        // one band per thread, cut along the side with more tiles; a band re-packs the other operand
        int rowTiles = Math.ceilDiv(p.m, MR), colTiles = Math.ceilDiv(p.n, NR);
        boolean byRows = rowTiles >= colTiles;
        int tiles = byRows ? rowTiles : colTiles, bands = Math.min(par.threads(), tiles);
        par.forEach(bands, band -> {
            int t0 = (int) ((long) tiles * band / bands), t1 = (int) ((long) tiles * (band + 1) / bands);
            if (byRows) blocked(p, t0 * MR, Math.min(p.m, t1 * MR), 0, p.n, SCRATCH.get());
            else blocked(p, 0, p.m, t0 * NR, Math.min(p.n, t1 * NR), SCRATCH.get());
        });
    }

    /** C[i0:i1, j0:j1] of the product, by the blocked loops of the file comment; j0 is a multiple of NR. */
    private static void blocked(Product p, int i0, int i1, int j0, int j1, Scratch s) {
        for (int ib = i0; ib < i1; ib += MC) {
            int mc = Math.min(MC, i1 - ib);
            for (int pb = 0; pb < p.k; pb += KC) {
                int kc = Math.min(KC, p.k - pb);
                boolean first = pb == 0;
                packA(p, ib, mc, pb, kc, s.a);
                for (int jb = j0; jb < j1; jb += NC) {
                    int nc = Math.min(NC, j1 - jb);
                    float[] panels;
                    int panel0, panelStride = even(kc) * NR;
                    if (p.panels != null) {
                        panels = p.panels;
                        panel0 = blockStart(pb, p.n) + jb / NR * panelStride;
                    } else {
                        packB(p.b, p.bOff, p.ldb, p.transB, pb, kc, jb, nc, s.b, 0);
                        panels = s.b;
                        panel0 = 0;
                    }
                    for (int ir = 0; ir < mc; ir += MR)
                        for (int jr = 0; jr < nc; jr += NR) {
                            if (mc - ir <= MR_SMALL) GemmKernel.tile4(even(kc), s.a, ir * KC, panels, panel0 + jr / NR * panelStride, s.tile);
                            else GemmKernel.tile(even(kc), s.a, ir * KC, panels, panel0 + jr / NR * panelStride, s.tile);
                            int row = ib + ir, col = jb + jr;
                            addTile(s.tile, Math.min(MR, mc - ir), Math.min(NR, nc - jr),
                                    p.c, p.cOff + row * p.ldc + col, p.ldc, first ? p.beta : 1f, first ? p.bias : null, col);
                        }
                }
            }
        }
    }

    /**
     * dst[r, q] (row stride KC) = alpha · op(A)[i0 + r, p0 + q] for r < mc, q < kc; the rows of the
     * last micro-panel up to the rows its kernel reads (MR, or MR_SMALL for a panel that small), and
     * column kc when kc is odd, are zero (edge tiles compute on zeros, the kernel's step pairs on a zero step).
     */
    private static void packA(Product p, int i0, int mc, int p0, int kc, float[] dst) {
        float[] a = p.a;
        if (!p.transA) {
            int full = kc - kc % L;
            VectorMask<Float> tail = F.indexInRange(full, kc);
            for (int r = 0; r < mc; r++) {
                int src = p.aOff + (i0 + r) * p.lda + p0, d = r * KC;
                for (int q = 0; q < full; q += L) FloatVector.fromArray(F, a, src + q).mul(p.alpha).intoArray(dst, d + q);
                if (full < kc) FloatVector.fromArray(F, a, src + full, tail).mul(p.alpha).intoArray(dst, d + full, tail);
            }
        } else {
            // op(A)[i, p] = a[p, i]: each micro-panel takes MR-long runs of one row of a per step
            for (int ir = 0; ir < mc; ir += MR) {
                int rows = Math.min(MR, mc - ir);
                for (int q = 0; q < kc; q++) {
                    int src = p.aOff + (p0 + q) * p.lda + i0 + ir, d = ir * KC + q;
                    for (int r = 0; r < rows; r++) dst[d + r * KC] = p.alpha * a[src + r];
                }
            }
        }
        int padded = mc % MR == 0 ? mc : mc - mc % MR + (mc % MR <= MR_SMALL ? MR_SMALL : MR);
        for (int r = 0; r < padded; r++)
            if (r >= mc) Arrays.fill(dst, r * KC, r * KC + even(kc), 0f);
            else if (kc % 2 != 0) dst[r * KC + kc] = 0f;
    }

    /**
     * dst at dOff = ⌈nc/NR⌉ panels of [even(kc)][NR]: panel t holds op(B)[p0 + q, j0 + t·NR + u]
     * at (t·even(kc) + q)·NR + u, zero past column nc and in step kc when kc is odd.
     * op(B)[p, j] = b[p, j], or b[j, p] when transB (leading dimension ldb).
     */
    private static void packB(float[] b, int bOff, int ldb, boolean transB, int p0, int kc, int j0, int nc, float[] dst, int dOff) {
        for (int jr = 0; jr < nc; jr += NR) {
            int cols = Math.min(NR, nc - jr), panel = dOff + jr / NR * even(kc) * NR;
            if (!transB) {
                VectorMask<Float> lo = F.indexInRange(0, cols), hi = F.indexInRange(L, cols);
                for (int q = 0; q < kc; q++) {
                    int src = bOff + (p0 + q) * ldb + j0 + jr, d = panel + q * NR;
                    FloatVector.fromArray(F, b, src, lo).intoArray(dst, d);
                    FloatVector.fromArray(F, b, src + L, hi).intoArray(dst, d + L);
                }
            } else {
                for (int u = 0; u < NR; u++) {
                    int src = bOff + (j0 + jr + u) * ldb + p0, d = panel + u;
                    if (u < cols) for (int q = 0; q < kc; q++) dst[d + q * NR] = b[src + q];
                    else for (int q = 0; q < kc; q++) dst[d + q * NR] = 0f;
                }
            }
            if (kc % 2 != 0) Arrays.fill(dst, panel + kc * NR, panel + (kc + 1) * NR, 0f);
        }
    }

    /** Where the B block of the k block starting at pb begins in a PackedWeight with n outputs. */
    private static int blockStart(int pb, int n) {
        return pb * Math.ceilDiv(n, NR) * NR;
    }

    /** k rounded up to even: the kernel consumes depth in pairs of steps. */
    private static int even(int k) {
        return k + (k & 1);
    }

    /**
     * C[mr, nr] at ci (row stride ldc) = tile[:mr, :nr] + beta·C (+ bias[col:col + nr]); beta = 0
     * never reads C.
     */
    private static void addTile(float[] tile, int mr, int nr, float[] c, int ci, int ldc, float beta, float[] bias, int col) {
        if (nr == NR) {
            for (int r = 0; r < mr; r++) {
                int cr = ci + r * ldc;
                addVector(tile, r * NR, c, cr, beta, bias, col);
                addVector(tile, r * NR + L, c, cr + L, beta, bias, col + L);
            }
            return;
        }
        VectorMask<Float> lo = F.indexInRange(0, nr), hi = F.indexInRange(L, nr);
        for (int r = 0; r < mr; r++) {
            int cr = ci + r * ldc;
            addVector(tile, r * NR, c, cr, beta, bias, col, lo);
            addVector(tile, r * NR + L, c, cr + L, beta, bias, col + L, hi);
        }
    }

    /** C[ci:ci + L] = tile[t:t + L] + beta·C (+ bias[col:col + L]): a full vector, no mask (the common case). */
    private static void addVector(float[] tile, int t, float[] c, int ci, float beta, float[] bias, int col) {
        FloatVector v = FloatVector.fromArray(F, tile, t);
        if (beta != 0f) v = v.add(FloatVector.fromArray(F, c, ci).mul(beta));
        if (bias != null) v = v.add(FloatVector.fromArray(F, bias, col));
        v.intoArray(c, ci);
    }

    /** The lanes m of C[ci:ci + L] = tile[t:t + L] + beta·C (+ bias[col:col + L]). */
    private static void addVector(float[] tile, int t, float[] c, int ci, float beta, float[] bias, int col, VectorMask<Float> m) {
        FloatVector v = FloatVector.fromArray(F, tile, t);
        if (beta != 0f) v = v.add(FloatVector.fromArray(F, c, ci, m).mul(beta));
        if (bias != null) v = v.add(FloatVector.fromArray(F, bias, col, m));
        v.intoArray(c, ci, m);
    }

    /** C = beta·C (+ bias): the whole product when k = 0 or alpha = 0, which never reads A or B. */
    private static void scaleOnly(Product p) {
        for (int i = 0; i < p.m; i++)
            for (int j = 0; j < p.n; j++) {
                int ci = p.cOff + i * p.ldc + j;
                float v = p.beta == 0f ? 0f : p.beta * p.c[ci];
                p.c[ci] = p.bias == null ? v : v + p.bias[j];
            }
    }

    /**
     * Small sgemm without packing: per row i, row = alpha·op(A)[i, :], then
     * C[i, :] = row · B (vectors along n) or, when transB, C[i, j] = row · b[j, :] (vectors along k).
     */
    private static void small(Product p, Scratch s) {
        if (s.row.length < p.k) s.row = new float[p.k];
        float[] row = s.row, a = p.a, b = p.b, c = p.c;
        for (int i = 0; i < p.m; i++) {
            for (int q = 0; q < p.k; q++)
                row[q] = p.alpha * (p.transA ? a[p.aOff + q * p.lda + i] : a[p.aOff + i * p.lda + q]);
            int ci = p.cOff + i * p.ldc;
            if (!p.transB) {
                for (int j = 0; j < p.n; j += L) {
                    VectorMask<Float> in = F.indexInRange(j, p.n);
                    FloatVector acc = FloatVector.zero(F);
                    for (int q = 0; q < p.k; q++)
                        acc = FloatVector.broadcast(F, row[q]).fma(FloatVector.fromArray(F, b, p.bOff + q * p.ldb + j, in), acc);
                    if (p.beta != 0f) acc = acc.add(FloatVector.fromArray(F, c, ci + j, in).mul(p.beta));
                    acc.intoArray(c, ci + j, in);
                }
            } else {
                for (int j = 0; j < p.n; j++) {
                    int bj = p.bOff + j * p.ldb;
                    FloatVector acc = FloatVector.zero(F);
                    for (int q = 0; q < p.k; q += L) {
                        VectorMask<Float> in = F.indexInRange(q, p.k);
                        acc = FloatVector.fromArray(F, row, q, in).fma(FloatVector.fromArray(F, b, bj + q, in), acc);
                    }
                    float v = Lanes.sum(acc);
                    c[ci + j] = p.beta == 0f ? v : v + p.beta * c[ci + j];
                }
            }
        }
    }

    /** op(B)ᵀ [n, k] row-major into s.columns, zero rows up to a multiple of 4 (the narrow path's column groups). */
    private static float[] packColumns(Product p, Scratch s) {
        int n4 = (p.n + 3) & ~3;
        if (s.columns.length < n4 * p.k) s.columns = new float[n4 * p.k];
        float[] columns = s.columns;
        for (int j = 0; j < n4; j++)
            for (int q = 0; q < p.k; q++)
                columns[j * p.k + q] = j >= p.n ? 0f : p.transB ? p.b[p.bOff + j * p.ldb + q] : p.b[p.bOff + q * p.ldb + j];
        return columns;
    }

    /** Rows [i0, i1) of a narrow product: C[i, j] = alpha · A[i, :]·columns[j, :] + beta·C, four columns per sweep along k. */
    private static void narrow(Product p, float[] columns, int i0, int i1, float[] sums) {
        int k = p.k, full = k - k % L;
        VectorMask<Float> tail = F.indexInRange(full, k);
        for (int i = i0; i < i1; i++) {
            int ai = p.aOff + i * p.lda, ci = p.cOff + i * p.ldc;
            for (int j = 0; j < p.n; j += 4) {
                int b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
                FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
                for (int q = 0; q < full; q += L) {
                    FloatVector x = FloatVector.fromArray(F, p.a, ai + q);
                    s0 = x.fma(FloatVector.fromArray(F, columns, b0 + q), s0);
                    s1 = x.fma(FloatVector.fromArray(F, columns, b1 + q), s1);
                    s2 = x.fma(FloatVector.fromArray(F, columns, b2 + q), s2);
                    s3 = x.fma(FloatVector.fromArray(F, columns, b3 + q), s3);
                }
                if (full < k) {
                    FloatVector x = FloatVector.fromArray(F, p.a, ai + full, tail);
                    s0 = x.fma(FloatVector.fromArray(F, columns, b0 + full, tail), s0);
                    s1 = x.fma(FloatVector.fromArray(F, columns, b1 + full, tail), s1);
                    s2 = x.fma(FloatVector.fromArray(F, columns, b2 + full, tail), s2);
                    s3 = x.fma(FloatVector.fromArray(F, columns, b3 + full, tail), s3);
                }
                s0.intoArray(sums, 0);
                s1.intoArray(sums, L);
                s2.intoArray(sums, 2 * L);
                s3.intoArray(sums, 3 * L);
                for (int u = 0; u < 4 && j + u < p.n; u++) {
                    float sum = 0;
                    for (int l = 0; l < L; l++) sum += sums[u * L + l];
                    float v = p.alpha * sum;
                    p.c[ci + j + u] = p.beta == 0f ? v : v + p.beta * p.c[ci + j + u];
                }
            }
        }
    }

    /** Checks that the [rows, cols] matrix at off with leading dimension ld lies inside x. */
    private static void checkMatrix(String name, float[] x, int off, int rows, int cols, int ld) {
        if (off < 0 || ld < cols)
            throw new IllegalArgumentException(name + ": offset " + off + ", leading dimension " + ld + " < " + cols + " columns");
        if (rows > 0 && cols > 0 && (long) off + (long) (rows - 1) * ld + cols > x.length)
            throw new IllegalArgumentException(name + ": " + rows + "x" + cols + " (ld " + ld + ") at " + off + " overruns its " + x.length + " values");
    }
}
