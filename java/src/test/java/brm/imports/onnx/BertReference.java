package brm.imports.onnx;

import brm.io.ModelWeights;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Reference only, for checking imports: a plain float64 forward of a Hugging Face BertModel directory (post-LN BERT,
 * exact erf GELU, bidirectional attention over the unmasked tokens). Not brm's engine; slow and simple on purpose.
 * <pre>
 *   x = LN(word[id] + position[t] + type[tt])
 *   per layer: a = softmax over unmasked keys (q k / sqrt d) v per head;  x = LN(x + a Wo + bo);
 *              x = LN(x + gelu(x Wi + bi) Wout + bout)
 * </pre>
 */
final class BertReference implements AutoCloseable {
    private final int hidden, layers, heads, intermediate;
    private final double eps;
    private final ModelWeights weights;
    private final Map<String, double[]> loaded = new HashMap<>();

    BertReference(Path dir) throws IOException {
        JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        hidden = c.get("hidden_size").asInt();
        layers = c.get("num_hidden_layers").asInt();
        heads = c.get("num_attention_heads").asInt();
        intermediate = c.get("intermediate_size").asInt();
        eps = c.get("layer_norm_eps").asDouble();
        weights = ModelWeights.open(dir);
    }

    /** Last hidden state [n][hidden] of one sequence; mask[t] = 0 hides token t as a key. */
    double[][] lastHiddenState(long[] ids, long[] types, long[] mask) {
        int n = ids.length;
        double[][] x = new double[n][];
        double[] word = load("bert.embeddings.word_embeddings.weight"), pos = load("bert.embeddings.position_embeddings.weight"),
                type = load("bert.embeddings.token_type_embeddings.weight");
        for (int t = 0; t < n; t++) {
            x[t] = new double[hidden];
            for (int i = 0; i < hidden; i++)
                x[t][i] = word[(int) ids[t] * hidden + i] + pos[t * hidden + i] + type[(int) types[t] * hidden + i];
        }
        layerNorm(x, "bert.embeddings.LayerNorm");
        for (int l = 0; l < layers; l++) {
            String p = "bert.encoder.layer." + l;
            double[][] q = linear(x, p + ".attention.self.query"), k = linear(x, p + ".attention.self.key"),
                    v = linear(x, p + ".attention.self.value");
            double[][] context = attention(q, k, v, mask);
            add(x, linear(context, p + ".attention.output.dense"));
            layerNorm(x, p + ".attention.output.LayerNorm");
            double[][] up = linear(x, p + ".intermediate.dense");
            for (double[] row : up)
                for (int i = 0; i < row.length; i++) row[i] = 0.5 * row[i] * (1 + erf(row[i] / Math.sqrt(2)));
            add(x, linear(up, p + ".output.dense"));
            layerNorm(x, p + ".output.LayerNorm");
        }
        return x;
    }

    @Override
    public void close() {
        weights.close();
    }

    /** Sentence embedding: mean over the unmasked tokens or the first token, then L2-normalised. */
    static double[] sentenceEmbedding(double[][] hidden, long[] mask, String pooling) {
        double[] e = new double[hidden[0].length];
        double count = 0;
        for (int t = 0; t < hidden.length; t++) {
            if (pooling.equals("cls") ? t != 0 : mask[t] == 0) continue;
            for (int i = 0; i < e.length; i++) e[i] += hidden[t][i];
            count++;
        }
        double norm = 0;
        for (int i = 0; i < e.length; i++) norm += (e[i] /= count) * e[i];
        for (int i = 0; i < e.length; i++) e[i] /= Math.sqrt(norm);
        return e;
    }

    private double[][] attention(double[][] q, double[][] k, double[][] v, long[] mask) {
        int n = q.length, d = hidden / heads;
        double[][] out = new double[n][hidden];
        for (int h = 0; h < heads; h++) {
            for (int t = 0; t < n; t++) {
                double[] p = new double[n];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int s = 0; s < n; s++) {
                    if (mask[s] == 0) continue;
                    for (int i = h * d; i < (h + 1) * d; i++) p[s] += q[t][i] * k[s][i];
                    p[s] /= Math.sqrt(d);
                    max = Math.max(max, p[s]);
                }
                for (int s = 0; s < n; s++) sum += p[s] = mask[s] == 0 ? 0 : Math.exp(p[s] - max);
                for (int s = 0; s < n; s++)
                    for (int i = h * d; i < (h + 1) * d; i++) out[t][i] += p[s] / sum * v[s][i];
            }
        }
        return out;
    }

    /** x W^T + b with the HF weight W [out, in]. */
    private double[][] linear(double[][] x, String prefix) {
        double[] w = load(prefix + ".weight"), b = load(prefix + ".bias");
        int out = b.length, in = w.length / out;
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++)
            for (int o = 0; o < out; o++) {
                double s = b[o];
                for (int i = 0; i < in; i++) s += x[t][i] * w[o * in + i];
                y[t][o] = s;
            }
        return y;
    }

    private void layerNorm(double[][] x, String prefix) {
        double[] gamma = load(prefix + ".weight"), beta = load(prefix + ".bias");
        for (double[] row : x) {
            double mean = 0, var = 0;
            for (double v : row) mean += v / row.length;
            for (double v : row) var += (v - mean) * (v - mean) / row.length;
            for (int i = 0; i < row.length; i++) row[i] = (row[i] - mean) / Math.sqrt(var + eps) * gamma[i] + beta[i];
        }
    }

    private static void add(double[][] x, double[][] y) {
        for (int t = 0; t < x.length; t++)
            for (int i = 0; i < x[t].length; i++) x[t][i] += y[t][i];
    }

    private double[] load(String name) {
        return loaded.computeIfAbsent(name, k -> {
            float[] f = weights.floats(k, weights.info(k).shape());
            double[] d = new double[f.length];
            for (int i = 0; i < f.length; i++) d[i] = f[i];
            return d;
        });
    }

    /** erf to about 1e-16 relative: its Taylor series near 0, the continued fraction of erfc beyond. */
    static double erf(double x) {
        double a = Math.abs(x);
        if (a < 2.5) {
            double term = a, sum = a;
            for (int k = 1; Math.abs(term) > 1e-17 * Math.abs(sum); k++) {
                term *= -a * a / k;
                sum += term / (2 * k + 1);
            }
            return Math.copySign(2 / Math.sqrt(Math.PI) * sum, x);
        }
        // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))), evaluated bottom-up
        double f = a;
        for (int k = 60; k >= 1; k--) f = a + k / 2.0 / f;
        return Math.copySign(1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f, x);
    }
}
