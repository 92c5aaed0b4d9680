package brm.imports.llama2c;

import brm.io.SafetensorsFile;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Test reference, not brm's engine: a plain float64 forward of a Hugging Face Llama directory, written
 * from HF's modeling_llama, to check imported weights. For tokens t[0..T):
 *   x = embed[t]
 *   per layer: h = rms(x)·w_in;  q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ;  rotate-half RoPE on q and k:
 *                (a, b) = (u[i], u[i+hd/2]) → (a·cos − b·sin, b·cos + a·sin), angle p·θ^(−2i/hd);
 *              causal softmax(q·kᵀ/√hd)·v, query head j reading kv head j / (n_heads / n_kv_heads);
 *              x += attn·Woᵀ;  h = rms(x)·w_post;  x += (silu(h·Wgᵀ) ⊙ h·Wuᵀ)·Wdᵀ
 *   logits = rms(x)·w_norm·Eᵀ, E = lm_head, or the token embedding when tied
 * with rms(u) = u / √(mean(u²) + eps).
 */
final class LlamaReferenceForward {
    private final int dim, hidden, layers, heads, kvHeads, vocab, hd;
    private final double eps, theta;
    private final double[] embed, norm, classifier;
    private final double[][] attnNorm, wq, wk, wv, wo, mlpNorm, gate, up, down;

    LlamaReferenceForward(Path dir) throws IOException {
        JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        dim = c.get("hidden_size").asInt();
        hidden = c.get("intermediate_size").asInt();
        layers = c.get("num_hidden_layers").asInt();
        heads = c.get("num_attention_heads").asInt();
        kvHeads = c.get("num_key_value_heads").asInt();
        vocab = c.get("vocab_size").asInt();
        eps = c.get("rms_norm_eps").asDouble();
        theta = c.get("rope_theta").asDouble();
        hd = dim / heads;
        int kv = kvHeads * hd;
        try (SafetensorsFile w = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            embed = wide(w.floats("model.embed_tokens.weight", vocab, dim));
            norm = wide(w.floats("model.norm.weight", dim));
            classifier = c.get("tie_word_embeddings").asBoolean() ? embed : wide(w.floats("lm_head.weight", vocab, dim));
            attnNorm = new double[layers][];
            wq = new double[layers][];
            wk = new double[layers][];
            wv = new double[layers][];
            wo = new double[layers][];
            mlpNorm = new double[layers][];
            gate = new double[layers][];
            up = new double[layers][];
            down = new double[layers][];
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                attnNorm[l] = wide(w.floats(p + "input_layernorm.weight", dim));
                wq[l] = wide(w.floats(p + "self_attn.q_proj.weight", dim, dim));
                wk[l] = wide(w.floats(p + "self_attn.k_proj.weight", kv, dim));
                wv[l] = wide(w.floats(p + "self_attn.v_proj.weight", kv, dim));
                wo[l] = wide(w.floats(p + "self_attn.o_proj.weight", dim, dim));
                mlpNorm[l] = wide(w.floats(p + "post_attention_layernorm.weight", dim));
                gate[l] = wide(w.floats(p + "mlp.gate_proj.weight", hidden, dim));
                up[l] = wide(w.floats(p + "mlp.up_proj.weight", hidden, dim));
                down[l] = wide(w.floats(p + "mlp.down_proj.weight", dim, hidden));
            }
        }
    }

    /** tokens [T] → logits of the last position [vocab]. */
    double[] lastLogits(int[] tokens) {
        int n = tokens.length, kv = kvHeads * hd;
        double[][] x = new double[n][];
        for (int t = 0; t < n; t++) x[t] = Arrays.copyOfRange(embed, tokens[t] * dim, (tokens[t] + 1) * dim);
        for (int l = 0; l < layers; l++) {
            double[][] q = new double[n][], k = new double[n][], v = new double[n][];
            for (int t = 0; t < n; t++) {
                double[] h = rms(x[t], attnNorm[l]);
                q[t] = rope(linear(wq[l], h, dim), t, heads);
                k[t] = rope(linear(wk[l], h, kv), t, kvHeads);
                v[t] = linear(wv[l], h, kv);
            }
            for (int t = 0; t < n; t++) {
                double[] attn = new double[dim];
                for (int head = 0; head < heads; head++) {
                    int qOff = head * hd, kOff = head / (heads / kvHeads) * hd;
                    double[] p = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int s = 0; s <= t; s++) {
                        for (int i = 0; i < hd; i++) p[s] += q[t][qOff + i] * k[s][kOff + i];
                        p[s] /= Math.sqrt(hd);
                        max = Math.max(max, p[s]);
                    }
                    for (int s = 0; s <= t; s++) sum += p[s] = Math.exp(p[s] - max);
                    for (int s = 0; s <= t; s++)
                        for (int i = 0; i < hd; i++) attn[qOff + i] += p[s] / sum * v[s][kOff + i];
                }
                add(x[t], linear(wo[l], attn, dim));
                double[] h = rms(x[t], mlpNorm[l]);
                double[] g = linear(gate[l], h, hidden), u = linear(up[l], h, hidden);
                for (int i = 0; i < hidden; i++) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
                add(x[t], linear(down[l], g, dim));
            }
        }
        return linear(classifier, rms(x[n - 1], norm), vocab);
    }

    /** w [out, in] · u [in] → [out]. */
    private static double[] linear(double[] w, double[] u, int out) {
        double[] y = new double[out];
        for (int o = 0; o < out; o++)
            for (int i = 0; i < u.length; i++) y[o] += w[o * u.length + i] * u[i];
        return y;
    }

    private double[] rms(double[] u, double[] weight) {
        double ss = 0;
        for (double a : u) ss += a * a;
        double scale = 1 / Math.sqrt(ss / u.length + eps);
        double[] y = new double[u.length];
        for (int i = 0; i < u.length; i++) y[i] = u[i] * scale * weight[i];
        return y;
    }

    /** u [count·hd] rotated in place at position pos, rotate-half pairing per head. */
    private double[] rope(double[] u, int pos, int count) {
        for (int head = 0; head < count; head++)
            for (int i = 0; i < hd / 2; i++) {
                double angle = pos * Math.pow(theta, -2.0 * i / hd);
                int a = head * hd + i, b = a + hd / 2;
                double ua = u[a], ub = u[b];
                u[a] = ua * Math.cos(angle) - ub * Math.sin(angle);
                u[b] = ub * Math.cos(angle) + ua * Math.sin(angle);
            }
        return u;
    }

    private static void add(double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) x[i] += y[i];
    }

    private static double[] wide(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
