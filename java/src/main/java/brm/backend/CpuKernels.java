package brm.backend;

import brm.cpu.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The row kernels of {@link CpuBackend}: Vector API loops (FloatVector.SPECIES_PREFERRED, FP32
 * accumulation) over one row or vector of n floats at a given offset. Every loop steps by the
 * vector length with a lane mask for the tail, so any n (head dims of 12, hidden sizes of 48) works
 * without a scalar copy of the math.
 *
 *   layerNorm   μ = Σx/n, σ² = Σ(x-μ)²/n, y = (x-μ)/√(σ²+ε)·w + b     (two passes: stable variance)
 *   rmsNorm     y = x/√(Σx²/n + ε)·w
 *   gelu        y = ½x(1 + erf(x/√2)), with 1 + erf(z) = 2 - erfc(z) for z ≥ 0 and erfc(-z) for
 *               z &lt; 0 so the negative tail keeps its relative precision; erfc(a), a ≥ 0, is the
 *               Chebyshev fit t·exp(-a² + P(t)), t = 1/(1 + a/2), relative error &lt; 1.2e-7
 *               (Numerical Recipes' erfcc, degree-9 P)
 *   siluMul     y = g/(1 + e^-g)·u
 *   softmaxExp  s_j ← e^(s_j - max), returns Σ_j s_j
 *   weightedRows  out = alpha · Σ_i w_i · x_i over m rows x_i of length n (a vector-matrix product kept in
 *               registers: each chunk of out is accumulated over all rows, then stored once)
 *
 * and the backward of each, given dy (rstd = 1/√(σ²+ε) as in the forward, g = dy·w):
 *   layerNorm   dx += rstd·(g - mean(g) - x̂·mean(g·x̂)),  x̂ = (x-μ)·rstd
 *   rmsNorm     dx += rstd·(g - x·rstd²·mean(g·x))
 *   gelu        dx = dy·(Φ(x) + x·φ(x)), Φ(x) = ½(1 + erf(x/√2)) as in the forward, φ(x) = e^(-x²/2)/√(2π)
 *   siluMul     s = 1/(1 + e^-g): dU = dy·g·s, dG = dy·u·s·(1 + g·(1 - s))
 *   softmax     ds_j = p_j·(dp_j - Σ_k p_k·dp_k)
 *
 * Bit-reproducibility: the Vector API may evaluate a lane reduction in any order and its EXP with
 * any ≤1-ulp routine, and the interpreter, C1 and C2 do differ, so results would change as the JIT
 * warms up. Sums of lanes are therefore added in lane order ({@link Lanes#sum}) and e^x is computed
 * here from exactly rounded ops ({@link #exp}): the same inputs give the same bits in every tier.
 */
final class CpuKernels {
    private CpuKernels() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final FloatVector ONE = FloatVector.broadcast(S, 1f);
    private static final float INV_SQRT2 = (float) (1 / Math.sqrt(2)), INV_SQRT_2PI = (float) (1 / Math.sqrt(2 * Math.PI));
    /** P(t) of erfc, constant term first. */
    private static final float[] ERFC_P = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
            0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};

    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    /** 1.5·2²³: adding and subtracting it rounds a float of magnitude &lt; 2²² to the nearest integer. */
    private static final float ROUNDER = 12582912f;
    /** Cephes expf: e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2, P constant term last. */
    private static final float[] EXP_P = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
            1.6666665459e-1f, 5.0000001201e-1f};

    /**
     * e^x per lane, within ~1 ulp: x = k·ln2 + r (Cody-Waite), e^r by polynomial, 2^k built in the
     * exponent bits. Saturates where 2^k would leave the normal range: 0 below -87 (e^-87 ≈ 1.6e-38)
     * and +∞ above 88.3 (e^88.3 ≈ 2.2e38, near the float maximum).
     */
    static FloatVector exp(FloatVector x) {
        var clamped = x.max(-87f).min(88.3f);
        var k = clamped.fma(LOG2E, ROUNDER).sub(ROUNDER);
        var r = k.fma(FloatVector.broadcast(S, -LN2_HI), clamped);
        r = k.fma(FloatVector.broadcast(S, -LN2_LO), r);
        var p = FloatVector.broadcast(S, EXP_P[0]);
        for (int i = 1; i < EXP_P.length; i++) p = p.fma(r, FloatVector.broadcast(S, EXP_P[i]));
        var er = p.mul(r).fma(r, r).add(1f);
        var twoK = ((IntVector) k.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return er.mul(twoK)
                .blend(0f, x.compare(VectorOperators.LT, -87f))
                .blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 88.3f));
    }

    private static VectorMask<Float> tail(int i, int n) {
        return S.indexInRange(i, n);
    }

    /** Σ x[o..o+n). */
    static float sum(float[] x, int o, int n) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) acc = acc.add(FloatVector.fromArray(S, x, o + i, tail(i, n)));
        return Lanes.sum(acc);
    }

    /** Σ a[ao+i]·b[bo+i], i &lt; n. */
    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            acc = FloatVector.fromArray(S, a, ao + i, m).fma(FloatVector.fromArray(S, b, bo + i, m), acc);
        }
        return Lanes.sum(acc);
    }

    /** x[o..o+n) *= alpha. */
    static void scale(float[] x, int o, int n, float alpha) {
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            FloatVector.fromArray(S, x, o + i, m).mul(alpha).intoArray(x, o + i, m);
        }
    }

    /**
     * out[oo..oo+n) = alpha · Σ_{i &lt; m} w[wo+i] · x[xo + i·stride ..+n): rows of x stride apart, summed in row order
     * (one fma per row) for each chunk of columns, which stays in a register until it is stored.
     */
    static void weightedRows(float alpha, float[] w, int wo, int m, float[] x, int xo, int stride, float[] out, int oo, int n) {
        for (int c = 0; c < n; c += S.length()) {
            var mask = tail(c, n);
            FloatVector acc = FloatVector.zero(S);
            for (int i = 0; i < m; i++) acc = FloatVector.fromArray(S, x, xo + i * stride + c, mask).fma(FloatVector.broadcast(S, w[wo + i]), acc);
            acc.mul(alpha).intoArray(out, oo + c, mask);
        }
    }

    /** x[xo..xo+n) += d[dO..dO+n). */
    static void add(float[] x, int xo, float[] d, int dO, int n) {
        add(x, xo, d, dO, x, xo, n);
    }

    /** out[oo..oo+n) = a[ao..ao+n) + b[bo..bo+n); out may be a or b. */
    static void add(float[] a, int ao, float[] b, int bo, float[] out, int oo, int n) {
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            FloatVector.fromArray(S, a, ao + i, m).add(FloatVector.fromArray(S, b, bo + i, m)).intoArray(out, oo + i, m);
        }
    }

    /** out[oo..oo+n) = layerNorm(x[xo..xo+n)) with weight w[n], bias b[n]; out may be x. */
    static void layerNorm(float[] x, int xo, float[] w, float[] b, float eps, float[] out, int oo, int n) {
        normalize(x, xo, sum(x, xo, n) / n, w, b, eps, out, oo, n);
    }

    private static void normalize(float[] x, int xo, float mean, float[] w, float[] b, float eps, float[] out, int oo, int n) {
        float inv = inverseStd(x, xo, mean, eps, n);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            FloatVector.fromArray(S, x, xo + i, m).sub(mean).mul(inv)
                    .fma(FloatVector.fromArray(S, w, i, m), FloatVector.fromArray(S, b, i, m))
                    .intoArray(out, oo + i, m);
        }
    }

    /** 1/√(σ² + ε) of x[xo..xo+n) with mean μ, σ² = Σ(x-μ)²/n: layerNorm's rstd. */
    private static float inverseStd(float[] x, int xo, float mean, float eps, int n) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var d = FloatVector.fromArray(S, x, xo + i, m).sub(mean, m);
            acc = d.fma(d, acc);
        }
        return (float) (1 / Math.sqrt(Lanes.sum(acc) / n + eps));
    }

    /** dx[dxo..dxo+n) += the layerNorm backward of row x[xo..xo+n) for dy[dyo..dyo+n), weight w[n]. */
    static void layerNormBackward(float[] x, int xo, float[] w, float eps, float[] dy, int dyo, float[] dx, int dxo, int n) {
        float mean = sum(x, xo, n) / n, rstd = inverseStd(x, xo, mean, eps, n);
        FloatVector sg = FloatVector.zero(S), sgx = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var g = FloatVector.fromArray(S, dy, dyo + i, m).mul(FloatVector.fromArray(S, w, i, m));
            var xhat = FloatVector.fromArray(S, x, xo + i, m).sub(mean).mul(rstd);
            sg = sg.add(g);
            sgx = g.fma(xhat, sgx);
        }
        float meanG = Lanes.sum(sg) / n, meanGx = Lanes.sum(sgx) / n;
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var g = FloatVector.fromArray(S, dy, dyo + i, m).mul(FloatVector.fromArray(S, w, i, m));
            var xhat = FloatVector.fromArray(S, x, xo + i, m).sub(mean).mul(rstd);
            g.sub(meanG).sub(xhat.mul(meanGx)).mul(rstd).add(FloatVector.fromArray(S, dx, dxo + i, m)).intoArray(dx, dxo + i, m);
        }
    }

    /** out[oo..oo+n) = rmsNorm(x[xo..xo+n)) with weight w[n]; out may be x. */
    static void rmsNorm(float[] x, int xo, float[] w, float eps, float[] out, int oo, int n) {
        scaleByWeight(x, xo, dot(x, xo, x, xo, n), w, eps, out, oo, n);
    }

    private static void scaleByWeight(float[] x, int xo, float sumSquares, float[] w, float eps, float[] out, int oo, int n) {
        float inv = rmsInverse(sumSquares, eps, n);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            FloatVector.fromArray(S, x, xo + i, m).mul(inv).mul(FloatVector.fromArray(S, w, i, m)).intoArray(out, oo + i, m);
        }
    }

    /** 1/√(Σx²/n + ε): rmsNorm's rstd. */
    private static float rmsInverse(float sumSquares, float eps, int n) {
        return (float) (1 / Math.sqrt(sumSquares / n + eps));
    }

    /** dx[dxo..dxo+n) += the rmsNorm backward of row x[xo..xo+n) for dy[dyo..dyo+n), weight w[n]. */
    static void rmsNormBackward(float[] x, int xo, float[] w, float eps, float[] dy, int dyo, float[] dx, int dxo, int n) {
        float rstd = rmsInverse(dot(x, xo, x, xo, n), eps, n);
        FloatVector sgx = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var g = FloatVector.fromArray(S, dy, dyo + i, m).mul(FloatVector.fromArray(S, w, i, m));
            sgx = g.fma(FloatVector.fromArray(S, x, xo + i, m), sgx);
        }
        float c = rstd * rstd * Lanes.sum(sgx) / n;
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var g = FloatVector.fromArray(S, dy, dyo + i, m).mul(FloatVector.fromArray(S, w, i, m));
            FloatVector.fromArray(S, x, xo + i, m).mul(-c).add(g).mul(rstd).add(FloatVector.fromArray(S, dx, dxo + i, m)).intoArray(dx, dxo + i, m);
        }
    }

    /** out[oo..oo+n) = gelu(x[xo..xo+n)) (exact, erf-based); out may be x. */
    static void gelu(float[] x, int xo, float[] out, int oo, int n) {
        int full = S.loopBound(n);
        for (int i = 0; i < full; i += S.length()) gelu(FloatVector.fromArray(S, x, xo + i)).intoArray(out, oo + i);
        if (full < n) {
            var m = tail(full, n);
            gelu(FloatVector.fromArray(S, x, xo + full, m)).intoArray(out, oo + full, m);
        }
    }

    /** ½·v·(1 + erf(v/√2)). */
    private static FloatVector gelu(FloatVector v) {
        return v.mul(0.5f).mul(onePlusErf(v));
    }

    /** 1 + erf(v/√2) = 2·Φ(v), erf from the erfc polynomial and exp. */
    private static FloatVector onePlusErf(FloatVector v) {
        var z = v.mul(INV_SQRT2);
        var a = z.abs();
        var t = ONE.div(a.fma(0.5f, 1f));
        var p = FloatVector.broadcast(S, ERFC_P[ERFC_P.length - 1]);
        for (int k = ERFC_P.length - 2; k >= 0; k--) p = p.fma(t, FloatVector.broadcast(S, ERFC_P[k]));
        var erfc = t.mul(exp(p.sub(a.mul(a))));
        return erfc.blend(erfc.neg().add(2f), z.compare(VectorOperators.GE, 0f));
    }

    /** dx[dxo..dxo+n) = dy[dyo..] · gelu'(x[xo..]); dx may be dy. */
    static void geluBackward(float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        int full = S.loopBound(n);
        for (int i = 0; i < full; i += S.length())
            geluGrad(FloatVector.fromArray(S, x, xo + i)).mul(FloatVector.fromArray(S, dy, dyo + i)).intoArray(dx, dxo + i);
        if (full < n) {
            var m = tail(full, n);
            geluGrad(FloatVector.fromArray(S, x, xo + full, m)).mul(FloatVector.fromArray(S, dy, dyo + full, m)).intoArray(dx, dxo + full, m);
        }
    }

    /** gelu'(v) = Φ(v) + v·φ(v). */
    private static FloatVector geluGrad(FloatVector v) {
        var density = exp(v.mul(v).mul(-0.5f)).mul(INV_SQRT_2PI);
        return v.fma(density, onePlusErf(v).mul(0.5f));
    }


    /** out[oo..oo+n) = silu(g[go..]) · u[uo..]. */
    static void siluMul(float[] g, int go, float[] u, int uo, float[] out, int oo, int n) {
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var gv = FloatVector.fromArray(S, g, go + i, m);
            var sigmoid = ONE.div(exp(gv.neg()).add(1f));
            gv.mul(sigmoid).mul(FloatVector.fromArray(S, u, uo + i, m)).intoArray(out, oo + i, m);
        }
    }

    /** dGate[.. n) = dy·u·s·(1 + g·(1 - s)), dUp[.. n) = dy·g·s, s = sigmoid(g[go..]), u = u[uo..]; each vector is read whole before it is written. */
    static void siluMulBackward(float[] g, int go, float[] u, int uo, float[] dy, int dyo, float[] dGate, int dgo, float[] dUp, int duo, int n) {
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var gv = FloatVector.fromArray(S, g, go + i, m);
            var d = FloatVector.fromArray(S, dy, dyo + i, m);
            var sigmoid = ONE.div(exp(gv.neg()).add(1f));
            var dSilu = ONE.sub(sigmoid).fma(gv, ONE).mul(sigmoid);
            d.mul(FloatVector.fromArray(S, u, uo + i, m)).mul(dSilu).intoArray(dGate, dgo + i, m);
            d.mul(gv.mul(sigmoid)).intoArray(dUp, duo + i, m);
        }
    }

    /**
     * Rotate-half rotary on x[o..o+2h): pairs (x[o+i], x[o+h+i]) rotated by (cos, sign·sin)[co+i], i &lt; h;
     * sign -1 is the inverse rotation.
     */
    static void rotate(float[] x, int o, int h, float[] cos, float[] sin, int co, float sign) {
        for (int i = 0; i < h; i += S.length()) {
            var m = tail(i, h);
            var x1 = FloatVector.fromArray(S, x, o + i, m);
            var x2 = FloatVector.fromArray(S, x, o + h + i, m);
            var c = FloatVector.fromArray(S, cos, co + i, m);
            var s = FloatVector.fromArray(S, sin, co + i, m).mul(sign);
            x1.mul(c).sub(x2.mul(s)).intoArray(x, o + i, m);
            x2.mul(c).add(x1.mul(s)).intoArray(x, o + h + i, m);
        }
    }

    /** s[o..o+n) ← e^(s - max); returns the sum. */
    static float softmaxExp(float[] s, int o, int n, float max) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            var e = exp(FloatVector.fromArray(S, s, o + i, m).sub(max));
            e.intoArray(s, o + i, m);
            acc = acc.add(e, m);
        }
        return Lanes.sum(acc);
    }

    /** dp[dpo..dpo+n) ← p·(dp - Σ p·dp): the softmax backward of one row of probabilities p[po..po+n). */
    static void softmaxBackward(float[] p, int po, float[] dp, int dpo, int n) {
        float pdp = dot(p, po, dp, dpo, n);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            FloatVector.fromArray(S, dp, dpo + i, m).sub(pdp).mul(FloatVector.fromArray(S, p, po + i, m)).intoArray(dp, dpo + i, m);
        }
    }

    /** max of s[o..o+n), n ≥ 1. */
    static float max(float[] s, int o, int n) {
        FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < n; i += S.length()) {
            var m = tail(i, n);
            acc = acc.lanewise(VectorOperators.MAX, FloatVector.fromArray(S, s, o + i, m), m);
        }
        return acc.reduceLanes(VectorOperators.MAX);
    }
}
