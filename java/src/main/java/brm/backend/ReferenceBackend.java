package brm.backend;

import java.util.Arrays;

import static brm.backend.OpChecks.check;
import static brm.backend.OpChecks.checkAttention;
import static brm.backend.OpChecks.checkCache;
import static brm.backend.OpChecks.checkLinear;
import static brm.backend.OpChecks.checkNorm;
import static brm.backend.OpChecks.checkRotary;
import static brm.backend.OpChecks.sameShape;

/**
 * The reference backend: every op of {@link Backend} as plain scalar loops in FP64, single-threaded,
 * written to be obviously right rather than fast. It is the oracle that float64 finite-difference
 * gradient checks and the FP32 CPU (and GPU) kernels are compared against. Tensors hold double[]
 * row-major (upload widens, download narrows; firstRows shares the storage); {@link #data} exposes
 * that storage so tests can perturb inputs and read gradients without rounding to float. Weights
 * keep W and bias in double. It also checks what the contract forbids and a faster backend may not
 * notice: shapes, positions past the tables, an output sharing storage with an input it must not.
 *
 * Forward, per row unless noted (n = cols, s = the LoRA scale):
 *   linear      y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ
 *   matmul      c = α·op(a)·op(b) + β·c
 *   layerNorm   μ = Σx/n, σ² = Σ(x-μ)²/n, r = 1/√(σ²+ε), x̂ = (x-μ)·r, y = x̂·w + b
 *   rmsNorm     r = 1/√(Σx²/n + ε), y = x·r·w
 *   gelu        y = x·Φ(x), Φ(x) = ½·erfc(-x/√2), erfc by W. J. Cody's rational approximations
 *   siluMul     y = g·σ(g)·u, σ(g) = 1/(1 + e^-g)
 *   rotary      (x_i, x_{i+m}) ← (x_i·c - x_{i+m}·s, x_{i+m}·c + x_i·s), c, s = cos, sin[pos, i], i &lt; m = dims/2
 *   attention   per sequence and query head: S_tj = scale·q_t·k_j, P_t = softmax_j(S_t) over j ≤ t
 *               (causal) or all j, o_t = Σ_j P_tj·v_j
 *   cachedAttention  the same per row r against the cached k_j, v_j of its slot, j ≤ pos_r
 *   cacheAppend      Kᵀ[(slot·Hkv + g)·D + e, pos] = k[r, g][e], V[slot·C + pos, g·D + e] = v[r, g][e]
 *   pool        LAST h[T-1], FIRST h[0], MEAN Σ_t h[t]/T, SUM Σ_t h[t]
 *   segmentOuter  per sequence s: out_s = α·a_sᵀ·b_s
 *   dropout     y = x·keep/(1-p), keep drawn by DropoutMask (its own backward)
 *
 * Backward, dy = ∂L/∂y ("+=" accumulates, "=" overwrites, as in {@link Backend}):
 *   linear      u = dy·B: dx += dy·W + s·u·A, dA += s·uᵀ·x, dB += s·dyᵀ·(x·Aᵀ)
 *   layerNorm   g = dy·w: dx += r·(g - mean(g) - x̂·mean(g·x̂))
 *   rmsNorm     g = dy·w: dx += r·(g - x·r²·mean(g·x))        (∂r/∂x_j = -r³·x_j/n)
 *   gelu        dx = dy·(Φ(x) + x·φ(x)), φ(x) = e^(-x²/2)/√(2π)
 *   siluMul     dUp = dy·g·σ(g), dGate = dy·u·σ(g)·(1 + g·(1 - σ(g)))
 *   rotary      a rotation's gradient is the transposed rotation: rotary with s → -s
 *   attention   dP_tj = dO_t·v_j, dS_tj = P_tj·(dP_tj - Σ_i P_ti·dP_ti):
 *               dq_t = scale·Σ_j dS_tj·k_j, dk_j = scale·Σ_t dS_tj·q_t, dv_j = Σ_t P_tj·dO_t,
 *               k and v gradients summed over the query heads sharing the key/value head
 *   pool        dx = dPooled at the row it read (MEAN: every row of the sequence, divided by T), 0 elsewhere
 */
public final class ReferenceBackend implements Backend {
    private record RefTensor(double[] data, int rows, int cols) implements Tensor {
        @Override
        public Tensor firstRows(int rows) {
            return new RefTensor(data, Tensor.firstRowsOf(this, rows), cols);
        }
    }

    /** w [out, in] row-major, bias [out] or null; backward: prepared for dx = dy·W. */
    private record RefWeight(double[] w, double[] bias, int out, int in, boolean backward) implements Weight {}

    /**
     * The live storage of t, row-major: element (r, c) at r·cols + c. It may be longer than
     * rows·cols when t is the first rows of a larger tensor.
     */
    public double[] data(Tensor t) {
        return ((RefTensor) t).data();
    }

    /** A tensor [rows, cols] holding a copy of {@code values} (row-major), without rounding to float. */
    public Tensor uploadDouble(double[] values, int rows, int cols) {
        check(values.length == (long) rows * cols, values.length + " values for [" + rows + ", " + cols + "]");
        return new RefTensor(values.clone(), rows, cols);
    }

    /** Tensors of this API overlap exactly when they share storage (firstRows views all start at row 0). */
    private void apart(String op, Tensor out, Tensor... inputs) {
        for (Tensor in : inputs)
            check(in == null || data(in) != data(out), op + ": an output shares storage with an input");
    }

    /** Index in the storage of element 0 of head h in row r. */
    private static int at(Heads heads, int r, int h) {
        return r * heads.tensor().cols() + heads.offset() + h * heads.stride();
    }

    private static double[] widen(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return new RefTensor(new double[Math.multiplyExact(rows, cols)], rows, cols);
    }

    @Override
    public Tensor upload(float[] values, int rows, int cols) {
        return uploadDouble(widen(values), rows, cols);
    }

    @Override
    public void write(float[] values, Tensor t) {
        check(values.length == t.rows() * t.cols(), values.length + " values for [" + t.rows() + ", " + t.cols() + "]");
        double[] d = data(t);
        for (int i = 0; i < values.length; i++) d[i] = values[i];
    }

    @Override
    public float[] download(Tensor t) {
        double[] d = data(t);
        float[] f = new float[t.rows() * t.cols()];
        for (int i = 0; i < f.length; i++) f[i] = (float) d[i];
        return f;
    }

    @Override
    public void download(Tensor t, float[] into) {
        System.arraycopy(download(t), 0, into, 0, t.rows() * t.cols());
    }

    @Override
    public void zero(Tensor t) {
        Arrays.fill(data(t), 0, t.rows() * t.cols(), 0);
    }

    @Override
    public Weight weight(float[] w, float[] bias, int out, int in, boolean backward) {
        check(w.length == (long) out * in, "weight has " + w.length + " values, not " + out + "x" + in);
        check(bias == null || bias.length == out, "bias has " + (bias == null ? 0 : bias.length) + " values, not " + out);
        return new RefWeight(widen(w), bias == null ? null : widen(bias), out, in, backward);
    }

    /** t [rows, r] = x [rows, in] · Aᵀ: the LoRA bottleneck. */
    private double[] loraDown(Tensor x, Lora lora) {
        int rows = x.rows(), in = x.cols(), r = lora.r();
        double[] xd = data(x), a = data(lora.a()), t = new double[rows * r];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < r; j++) {
                double s = 0;
                for (int k = 0; k < in; k++) s += xd[i * in + k] * a[j * in + k];
                t[i * r + j] = s;
            }
        return t;
    }

    @Override
    public void linear(Tensor x, Weight w, Lora lora, Tensor y) {
        checkLinear(x, w, lora, y);
        apart("linear", y, x, lora == null ? null : lora.a(), lora == null ? null : lora.b());
        RefWeight rw = (RefWeight) w;
        int rows = x.rows(), in = rw.in, out = rw.out;
        double[] xd = data(x), yd = data(y);
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < out; o++) {
                double s = rw.bias == null ? 0 : rw.bias[o];
                for (int k = 0; k < in; k++) s += xd[i * in + k] * rw.w[o * in + k];
                yd[i * out + o] = s;
            }
        if (lora == null) return;
        int r = lora.r();
        double scale = lora.scale();
        double[] t = loraDown(x, lora), b = data(lora.b());
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int j = 0; j < r; j++) s += t[i * r + j] * b[o * r + j];
                yd[i * out + o] += scale * s;
            }
    }

    @Override
    public void linearBackward(Tensor x, Weight w, Lora lora, Tensor dy, Tensor dx, Tensor dA, Tensor dB) {
        checkLinear(x, w, lora, dy);
        RefWeight rw = (RefWeight) w;
        int rows = x.rows(), in = rw.in, out = rw.out;
        double[] xd = data(x), dyd = data(dy);
        if (dx != null) {
            check(rw.backward, "linearBackward: the weight was not prepared for backward");
            sameShape("linearBackward dx", x, dx);
            apart("linearBackward", dx, x, dy);
            double[] dxd = data(dx);
            for (int i = 0; i < rows; i++)
                for (int k = 0; k < in; k++) {
                    double s = 0;
                    for (int o = 0; o < out; o++) s += dyd[i * out + o] * rw.w[o * in + k];
                    dxd[i * in + k] += s;
                }
        }
        if (lora == null) {
            check(dA == null && dB == null, "linearBackward: LoRA gradients asked without LoRA");
            return;
        }
        int r = lora.r();
        double scale = lora.scale();
        double[] a = data(lora.a()), b = data(lora.b());
        double[] u = new double[rows * r];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < r; j++) {
                double s = 0;
                for (int o = 0; o < out; o++) s += dyd[i * out + o] * b[o * r + j];
                u[i * r + j] = s;
            }
        if (dx != null) {
            double[] dxd = data(dx);
            for (int i = 0; i < rows; i++)
                for (int k = 0; k < in; k++) {
                    double s = 0;
                    for (int j = 0; j < r; j++) s += u[i * r + j] * a[j * in + k];
                    dxd[i * in + k] += scale * s;
                }
        }
        if (dA != null) {
            sameShape("linearBackward dA", lora.a(), dA);
            apart("linearBackward", dA, x, dy, lora.a(), lora.b());
            double[] dAd = data(dA);
            for (int j = 0; j < r; j++)
                for (int k = 0; k < in; k++) {
                    double s = 0;
                    for (int i = 0; i < rows; i++) s += u[i * r + j] * xd[i * in + k];
                    dAd[j * in + k] += scale * s;
                }
        }
        if (dB != null) {
            sameShape("linearBackward dB", lora.b(), dB);
            apart("linearBackward", dB, x, dy, lora.a(), lora.b());
            double[] t = loraDown(x, lora), dBd = data(dB);
            for (int o = 0; o < out; o++)
                for (int j = 0; j < r; j++) {
                    double s = 0;
                    for (int i = 0; i < rows; i++) s += dyd[i * out + o] * t[i * r + j];
                    dBd[o * r + j] += scale * s;
                }
        }
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, float beta, Tensor c) {
        int m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
        int kb = transB ? b.cols() : b.rows(), n = transB ? b.rows() : b.cols();
        check(k == kb && c.rows() == m && c.cols() == n, "matmul [" + m + ", " + k + "] · [" + kb + ", " + n + "] -> [" + c.rows() + ", " + c.cols() + "]");
        apart("matmul", c, a, b);
        double[] ad = data(a), bd = data(b), cd = data(c);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < k; l++)
                    s += ad[transA ? l * a.cols() + i : i * a.cols() + l] * bd[transB ? j * b.cols() + l : l * b.cols() + j];
                cd[i * n + j] = alpha * s + (beta == 0 ? 0 : beta * cd[i * n + j]);
            }
    }

    @Override
    public void embed(int[] ids, Tensor table, Tensor out) {
        check(ids.length == out.rows() && table.cols() == out.cols(), "embed: " + ids.length + " ids into [" + out.rows() + ", " + out.cols() + "]");
        apart("embed", out, table);
        int cols = out.cols();
        for (int r = 0; r < ids.length; r++) {
            check(ids[r] >= 0 && ids[r] < table.rows(), "embed: id " + ids[r] + " outside the table of " + table.rows());
            System.arraycopy(data(table), ids[r] * cols, data(out), r * cols, cols);
        }
    }

    @Override
    public void addPositions(Packing p, Tensor table, Tensor x) {
        check(x.rows() == p.tokens() && table.cols() == x.cols(), "addPositions: shapes");
        apart("addPositions", x, table);
        double[] td = data(table), xd = data(x);
        int cols = x.cols();
        for (int r = 0; r < x.rows(); r++) {
            int pos = p.positions()[r];
            check(pos < table.rows(), "addPositions: position " + pos + " past the table of " + table.rows());
            for (int c = 0; c < cols; c++) xd[r * cols + c] += td[pos * cols + c];
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        sameShape("add", a, b, out);
        double[] ad = data(a), bd = data(b), od = data(out);
        for (int i = 0; i < a.rows() * a.cols(); i++) od[i] = ad[i] + bd[i];
    }

    @Override
    public void dropout(Tensor x, float p, long seed, Tensor out) {
        sameShape("dropout", x, out);
        double[] xd = data(x), od = data(out);
        double scale = 1 / (1 - (double) p);
        for (int i = 0; i < x.rows() * x.cols(); i++) od[i] = DropoutMask.keep(seed, i, p) ? xd[i] * scale : 0;
    }

    /** Row r of x [rows, n] as layerNorm sees it: its mean and rstd = 1/√(var + eps). */
    private record Moments(double mean, double rstd) {
        static Moments of(double[] x, int r, int n, double eps) {
            double mean = 0, var = 0;
            for (int i = 0; i < n; i++) mean += x[r * n + i];
            mean /= n;
            for (int i = 0; i < n; i++) var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
            return new Moments(mean, 1 / Math.sqrt(var / n + eps));
        }
    }

    /** 1/√(mean(x²) + eps) of row r of x [rows, n]. */
    private static double rmsRstd(double[] x, int r, int n, double eps) {
        double ms = 0;
        for (int i = 0; i < n; i++) ms += x[r * n + i] * x[r * n + i];
        return 1 / Math.sqrt(ms / n + eps);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        checkNorm("layerNorm", x, weight, bias, out);
        apart("layerNorm", out, weight, bias);
        double[] xd = data(x), w = data(weight), b = data(bias), od = data(out);
        int n = x.cols();
        for (int r = 0; r < x.rows(); r++) {
            Moments m = Moments.of(xd, r, n, eps);
            for (int i = 0; i < n; i++) od[r * n + i] = (xd[r * n + i] - m.mean) * m.rstd * w[i] + b[i];
        }
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        checkNorm("layerNormBackward", x, weight, null, dy);
        sameShape("layerNormBackward", x, dx);
        apart("layerNormBackward", dx, x, weight, dy);
        double[] xd = data(x), w = data(weight), dyd = data(dy), dxd = data(dx);
        int n = x.cols();
        for (int r = 0; r < x.rows(); r++) {
            Moments m = Moments.of(xd, r, n, eps);
            double meanG = 0, meanGXhat = 0;
            for (int i = 0; i < n; i++) {
                double g = dyd[r * n + i] * w[i];
                meanG += g / n;
                meanGXhat += g * (xd[r * n + i] - m.mean) * m.rstd / n;
            }
            for (int i = 0; i < n; i++) {
                double g = dyd[r * n + i] * w[i], xhat = (xd[r * n + i] - m.mean) * m.rstd;
                dxd[r * n + i] += m.rstd * (g - meanG - xhat * meanGXhat);
            }
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        checkNorm("rmsNorm", x, weight, null, out);
        apart("rmsNorm", out, weight);
        double[] xd = data(x), w = data(weight), od = data(out);
        int n = x.cols();
        for (int r = 0; r < x.rows(); r++) {
            double rstd = rmsRstd(xd, r, n, eps);
            for (int i = 0; i < n; i++) od[r * n + i] = xd[r * n + i] * rstd * w[i];
        }
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        checkNorm("rmsNormBackward", x, weight, null, dy);
        sameShape("rmsNormBackward", x, dx);
        apart("rmsNormBackward", dx, x, weight, dy);
        double[] xd = data(x), w = data(weight), dyd = data(dy), dxd = data(dx);
        int n = x.cols();
        for (int r = 0; r < x.rows(); r++) {
            double rstd = rmsRstd(xd, r, n, eps), meanGX = 0;
            for (int i = 0; i < n; i++) meanGX += dyd[r * n + i] * w[i] * xd[r * n + i] / n;
            for (int i = 0; i < n; i++)
                dxd[r * n + i] += rstd * (dyd[r * n + i] * w[i] - xd[r * n + i] * rstd * rstd * meanGX);
        }
    }

    /** Φ(x), the standard normal distribution function, keeping its relative precision in the lower tail. */
    static double normalCdf(double x) {
        return 0.5 * erfc(-x / Math.sqrt(2));
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        sameShape("gelu", x, out);
        double[] xd = data(x), od = data(out);
        for (int i = 0; i < x.rows() * x.cols(); i++) od[i] = xd[i] * normalCdf(xd[i]);
    }

    @Override
    public void geluBackward(Tensor x, Tensor dy, Tensor dx) {
        sameShape("geluBackward", x, dy, dx);
        apart("geluBackward", dx, x);
        double[] xd = data(x), dyd = data(dy), dxd = data(dx);
        for (int i = 0; i < x.rows() * x.cols(); i++) {
            double v = xd[i], density = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
            dxd[i] = dyd[i] * (normalCdf(v) + v * density);
        }
    }

    private static double sigmoid(double g) {
        return 1 / (1 + Math.exp(-g));
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        sameShape("siluMul", gate, up, out);
        double[] g = data(gate), u = data(up), o = data(out);
        for (int i = 0; i < gate.rows() * gate.cols(); i++) o[i] = g[i] * sigmoid(g[i]) * u[i];
    }

    @Override
    public void siluMulBackward(Tensor gate, Tensor up, Tensor dy, Tensor dGate, Tensor dUp) {
        sameShape("siluMulBackward", gate, up, dy, dGate, dUp);
        apart("siluMulBackward", dGate, gate, up, dUp);
        apart("siluMulBackward", dUp, gate, up);
        double[] g = data(gate), u = data(up), dyd = data(dy), dg = data(dGate), du = data(dUp);
        for (int i = 0; i < gate.rows() * gate.cols(); i++) {
            double s = sigmoid(g[i]), d = dyd[i], ui = u[i];
            du[i] = d * g[i] * s;
            dg[i] = d * ui * s * (1 + g[i] * (1 - s));
        }
    }

    @Override
    public void rotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin, boolean inverse) {
        int m = dims / 2;
        checkRotary(p, heads, dims, cos, sin);
        double[] x = data(heads.tensor()), c = data(cos), s = data(sin);
        double sign = inverse ? -1 : 1;
        for (int r = 0; r < p.tokens(); r++) {
            int pos = p.positions()[r];
            check(pos < cos.rows(), "rotary: position " + pos + " past the tables of " + cos.rows());
            for (int h = 0; h < heads.count(); h++) {
                int o = at(heads, r, h);
                for (int i = 0; i < m; i++) {
                    double ci = c[pos * m + i], si = sign * s[pos * m + i], a = x[o + i], b = x[o + m + i];
                    x[o + i] = a * ci - b * si;
                    x[o + m + i] = b * ci + a * si;
                }
            }
        }
    }

    /**
     * P [n] = softmax_j(scale·q·k_j) for query row qRow of head h against keys j &lt; n of the
     * sequence starting at row start, key head g.
     */
    private double[] probabilities(Heads q, Heads k, int qRow, int h, int start, int n, int g, double scale) {
        double[] qd = data(q.tensor()), kd = data(k.tensor()), p = new double[n];
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int e = 0; e < q.dim(); e++) dot += qd[at(q, qRow, h) + e] * kd[at(k, start + j, g) + e];
            p[j] = scale * dot;
            max = Math.max(max, p[j]);
        }
        for (int j = 0; j < n; j++) sum += p[j] = Math.exp(p[j] - max);
        for (int j = 0; j < n; j++) p[j] /= sum;
        return p;
    }

    @Override
    public void attention(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor out) {
        checkAttention("attention", p, q, k, v, out);
        apart("attention", out, q.tensor(), k.tensor(), v.tensor());
        int dim = q.dim(), group = q.count() / k.count();
        double[] vd = data(v.tensor()), od = data(out);
        for (int s = 0; s < p.seqs(); s++)
            for (int h = 0; h < q.count(); h++)
                for (int t = 0; t < p.length(s); t++) {
                    int start = p.start(s), n = causal ? t + 1 : p.length(s), o = (start + t) * out.cols() + h * dim;
                    double[] prob = probabilities(q, k, start + t, h, start, n, h / group, scale);
                    for (int e = 0; e < dim; e++) {
                        double sum = 0;
                        for (int j = 0; j < n; j++) sum += prob[j] * vd[at(v, start + j, h / group) + e];
                        od[o + e] = sum;
                    }
                }
    }

    @Override
    public void cacheAppend(Packing p, Heads k, Heads v, int[] slots, Tensor keys, Tensor values) {
        int capacity = checkCache("cacheAppend", p, k, keys, values, slots), dim = k.dim(), kvHeads = values.cols() / dim;
        check(k.count() == kvHeads && v.count() == kvHeads && v.dim() == dim && v.tensor().rows() == p.tokens(), "cacheAppend: heads");
        double[] kd = data(k.tensor()), vd = data(v.tensor()), keyd = data(keys), vald = data(values);
        for (int s = 0; s < p.seqs(); s++)
            for (int r = p.start(s); r < p.start(s) + p.length(s); r++)
                for (int g = 0; g < kvHeads; g++)
                    for (int e = 0; e < dim; e++) {
                        int pos = p.positions()[r];
                        keyd[((slots[s] * kvHeads + g) * dim + e) * capacity + pos] = kd[at(k, r, g) + e];
                        vald[(slots[s] * capacity + pos) * values.cols() + g * dim + e] = vd[at(v, r, g) + e];
                    }
    }

    @Override
    public void cachedAttention(Packing p, Heads q, Tensor keys, Tensor values, int[] slots, float scale, Tensor out) {
        int capacity = checkCache("cachedAttention", p, q, keys, values, slots), dim = q.dim(), width = values.cols(), kvHeads = width / dim;
        check(q.count() % kvHeads == 0 && out.rows() == p.tokens() && out.cols() == q.count() * dim, "cachedAttention shapes");
        apart("cachedAttention", out, q.tensor(), keys, values);
        int group = q.count() / kvHeads;
        double[] qd = data(q.tensor()), kd = data(keys), vd = data(values), od = data(out);
        for (int s = 0; s < p.seqs(); s++)
            for (int r = p.start(s); r < p.start(s) + p.length(s); r++)
                for (int h = 0; h < q.count(); h++) {
                    int n = p.positions()[r] + 1, g = h / group;
                    double[] prob = new double[n];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j < n; j++) {
                        for (int e = 0; e < dim; e++) prob[j] += qd[at(q, r, h) + e] * kd[((slots[s] * kvHeads + g) * dim + e) * capacity + j];
                        prob[j] *= scale;
                        max = Math.max(max, prob[j]);
                    }
                    for (int j = 0; j < n; j++) sum += prob[j] = Math.exp(prob[j] - max);
                    for (int e = 0; e < dim; e++) {
                        double o = 0;
                        for (int j = 0; j < n; j++) o += prob[j] / sum * vd[(slots[s] * capacity + j) * width + g * dim + e];
                        od[r * out.cols() + h * dim + e] = o;
                    }
                }
    }

    /** Zeroes the heads' columns in every row of their tensor. */
    private void zeroHeads(Heads heads) {
        for (int r = 0; r < heads.tensor().rows(); r++)
            for (int h = 0; h < heads.count(); h++) Arrays.fill(data(heads.tensor()), at(heads, r, h), at(heads, r, h) + heads.dim(), 0);
    }

    @Override
    public void attentionBackward(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor dOut,
                                  Heads dq, Heads dk, Heads dv) {
        checkAttention("attentionBackward", p, q, k, v, dOut);
        checkAttention("attentionBackward", p, dq, dk, dv, dOut);
        check(dq.count() == q.count() && dk.count() == k.count(), "attentionBackward: gradient heads differ from the inputs'");
        for (Heads d : new Heads[]{dq, dk, dv}) apart("attentionBackward", d.tensor(), q.tensor(), k.tensor(), v.tensor(), dOut);
        int dim = q.dim(), group = q.count() / k.count();
        double[] qd = data(q.tensor()), kd = data(k.tensor()), vd = data(v.tensor()), dod = data(dOut);
        double[] dqd = data(dq.tensor()), dkd = data(dk.tensor()), dvd = data(dv.tensor());
        zeroHeads(dq);
        zeroHeads(dk);
        zeroHeads(dv);
        for (int s = 0; s < p.seqs(); s++)
            for (int h = 0; h < q.count(); h++)
                for (int t = 0; t < p.length(s); t++) {
                    int start = p.start(s), n = causal ? t + 1 : p.length(s), g = h / group, o = (start + t) * dOut.cols() + h * dim;
                    double[] prob = probabilities(q, k, start + t, h, start, n, g, scale), dProb = new double[n];
                    double rowDot = 0;
                    for (int j = 0; j < n; j++) {
                        for (int e = 0; e < dim; e++) dProb[j] += dod[o + e] * vd[at(v, start + j, g) + e];
                        rowDot += prob[j] * dProb[j];
                    }
                    for (int j = 0; j < n; j++) {
                        double dScore = prob[j] * (dProb[j] - rowDot);
                        for (int e = 0; e < dim; e++) {
                            dqd[at(dq, start + t, h) + e] += scale * dScore * kd[at(k, start + j, g) + e];
                            dkd[at(dk, start + j, g) + e] += scale * dScore * qd[at(q, start + t, h) + e];
                            dvd[at(dv, start + j, g) + e] += prob[j] * dod[o + e];
                        }
                    }
                }
    }

    /** The rows pooling reads for sequence s: [first, last], each with weight w. */
    private record Span(int first, int last, double w) {
        static Span of(Packing p, int s, Pooling how) {
            int first = p.start(s), last = first + p.length(s) - 1;
            return switch (how) {
                case LAST -> new Span(last, last, 1);
                case FIRST -> new Span(first, first, 1);
                case MEAN -> new Span(first, last, 1.0 / p.length(s));
                case SUM -> new Span(first, last, 1);
            };
        }
    }

    @Override
    public void segmentOuter(Packing p, Tensor a, Tensor b, float alpha, Tensor out) {
        int m = a.cols(), n = b.cols();
        check(a.rows() == p.tokens() && b.rows() == p.tokens() && out.rows() == p.seqs() * m && out.cols() == n, "segmentOuter: shapes");
        apart("segmentOuter", out, a);
        apart("segmentOuter", out, b);
        double[] ad = data(a), bd = data(b), od = data(out);
        for (int s = 0; s < p.seqs(); s++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double sum = 0;
                    for (int t = p.start(s); t < p.start(s) + p.length(s); t++) sum += ad[t * m + i] * bd[t * n + j];
                    od[(s * m + i) * n + j] = alpha * sum;
                }
    }

    @Override
    public void pool(Packing p, Tensor x, Pooling how, Tensor out) {
        check(x.rows() == p.tokens() && out.rows() == p.seqs() && out.cols() == x.cols(), "pool: shapes");
        apart("pool", out, x);
        double[] xd = data(x), od = data(out);
        int cols = x.cols();
        for (int s = 0; s < p.seqs(); s++) {
            Span span = Span.of(p, s, how);
            for (int c = 0; c < cols; c++) {
                double sum = 0;
                for (int r = span.first; r <= span.last; r++) sum += xd[r * cols + c];
                od[s * cols + c] = span.w * sum;
            }
        }
    }

    @Override
    public void poolBackward(Packing p, Pooling how, Tensor dPooled, Tensor dx) {
        check(dx.rows() == p.tokens() && dPooled.rows() == p.seqs() && dPooled.cols() == dx.cols(), "poolBackward: shapes");
        apart("poolBackward", dx, dPooled);
        zero(dx);
        double[] dp = data(dPooled), dxd = data(dx);
        int cols = dx.cols();
        for (int s = 0; s < p.seqs(); s++) {
            Span span = Span.of(p, s, how);
            for (int r = span.first; r <= span.last; r++)
                for (int c = 0; c < cols; c++) dxd[r * cols + c] = span.w * dp[s * cols + c];
        }
    }

    @Override
    public void close() {}

    // erfc coefficients of W. J. Cody, "Rational Chebyshev approximations for the error function",
    // Math. Comp. 23 (1969), as in netlib specfun CALERF; highest degree first, denominators monic.
    /** erf(x) = x·N(x²)/D(x²) for |x| ≤ 0.46875. */
    private static final double[] SMALL_NUM = {1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
            3.77485237685302021e2, 3.20937758913846947e3};
    private static final double[] SMALL_DEN = {1, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
            2.84423683343917062e3};
    /** erfc(y) = e^(-y²)·N(y)/D(y) for 0.46875 &lt; y ≤ 4. */
    private static final double[] MID_NUM = {2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
            6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2, 1.71204761263407058e3,
            2.05107837782607147e3, 1.23033935479799725e3};
    private static final double[] MID_DEN = {1, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
            1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3, 3.43936767414372164e3,
            1.23033935480374942e3};
    /** erfc(y) = e^(-y²)/y·(1/√π - z·N(z)/D(z)), z = 1/y², for y &gt; 4. */
    private static final double[] TAIL_NUM = {1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
            1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4};
    private static final double[] TAIL_DEN = {1, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
            6.05183413124413191e-2, 2.33520497626869185e-3};
    private static final double SMALL = 0.46875, MID = 4, INV_SQRT_PI = 5.6418958354775628695e-1;
    /** Above this erfc underflows to 0 in double. */
    private static final double BIG = 26.543;

    private static double poly(double[] c, double x) {
        double s = 0;
        for (double ci : c) s = s * x + ci;
        return s;
    }

    /** erf(x), relative error about 1e-16. */
    static double erf(double x) {
        double y = Math.abs(x);
        if (!(y > SMALL)) return x * poly(SMALL_NUM, x * x) / poly(SMALL_DEN, x * x);
        return x > 0 ? 1 - erfc(y) : erfc(y) - 1;
    }

    /** erfc(x) = 1 - erf(x), keeping its relative precision for large x (down to underflow at x ≈ 26.5). */
    static double erfc(double x) {
        double y = Math.abs(x);
        if (!(y > SMALL)) return 1 - erf(x);
        double e;
        if (y >= BIG) e = 0;
        else {
            double z = 1 / (y * y), ratio = y <= MID ? poly(MID_NUM, y) / poly(MID_DEN, y)
                    : (INV_SQRT_PI - z * poly(TAIL_NUM, z) / poly(TAIL_DEN, z)) / y;
            // e^(-y²) = e^(-ys²)·e^(-(y-ys)(y+ys)) with ys = y cut to 1/16ths: ys² is exact, so the large
            // exponent carries no rounding error (Cody's trick)
            double ys = Math.floor(16 * y) / 16;
            e = Math.exp(-ys * ys) * Math.exp(-(y - ys) * (y + ys)) * ratio;
        }
        return x > 0 ? e : 2 - e;
    }
}
