package brm.backbone;

import brm.BrmException;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.io.SafetensorsWriter;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a GPT-NeoX reward model with random weights as a Hugging Face directory
 * (GPTNeoXForSequenceClassification key names), for benchmarks and demos of a given shape, e.g.
 * Pythia-70M: hidden 512, 6 layers, 8 heads, intermediate 2048, vocab 50304.
 * Weights ~ N(0, 0.02) as HF initialises them; norm weights 1 + N(0, 0.02) and biases N(0, 0.02) so
 * that no term is trivially zero.
 */
public final class RandomCheckpoint {
    private RandomCheckpoint() {}

    /** The shape of a GPT-NeoX model. */
    public record NeoXShape(int vocab, int hidden, int layers, int heads, int intermediate, double rotaryPct, int maxPositions) {
        public static final NeoXShape PYTHIA_70M = new NeoXShape(50304, 512, 6, 8, 2048, 0.25, 2048);
        public static final NeoXShape PYTHIA_410M = new NeoXShape(50304, 1024, 24, 16, 4096, 0.25, 2048);
    }

    public static void gptNeoX(Path dir, NeoXShape s, long seed) {
        if (s.hidden() % s.heads() != 0) throw new BrmException("hidden " + s.hidden() + " is not a multiple of heads " + s.heads());
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, SafetensorsWriter.Tensor> w = new LinkedHashMap<>();
        int h = s.hidden(), f = s.intermediate();
        w.put("gpt_neox.embed_in.weight", normal(random, 0, (long) s.vocab() * h, s.vocab(), h));
        for (int l = 0; l < s.layers(); l++) {
            String p = "gpt_neox.layers." + l + ".";
            for (String norm : new String[] {"input_layernorm", "post_attention_layernorm"}) {
                w.put(p + norm + ".weight", normal(random, 1, h, h));
                w.put(p + norm + ".bias", normal(random, 0, h, h));
            }
            linear(w, random, p + "attention.query_key_value", 3 * h, h);
            linear(w, random, p + "attention.dense", h, h);
            linear(w, random, p + "mlp.dense_h_to_4h", f, h);
            linear(w, random, p + "mlp.dense_4h_to_h", h, f);
        }
        w.put("gpt_neox.final_layer_norm.weight", normal(random, 1, h, h));
        w.put("gpt_neox.final_layer_norm.bias", normal(random, 0, h, h));
        w.put("score.weight", normal(random, 0, h, 1, h));
        SafetensorsWriter.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));

        ObjectNode c = Jsonl.JSON.createObjectNode();
        c.put("model_type", "gpt_neox");
        c.putArray("architectures").add("GPTNeoXForSequenceClassification");
        c.put("vocab_size", s.vocab());
        c.put("hidden_size", h);
        c.put("num_hidden_layers", s.layers());
        c.put("num_attention_heads", s.heads());
        c.put("intermediate_size", f);
        c.put("hidden_act", "gelu");
        c.put("rotary_pct", s.rotaryPct());
        c.put("rotary_emb_base", 10000);
        c.put("max_position_embeddings", s.maxPositions());
        c.put("layer_norm_eps", 1e-5);
        c.put("use_parallel_residual", true);
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 0);
        c.put("eos_token_id", 0);
        c.put("num_labels", 1);
        c.put("initializer_range", 0.02);
        AtomicFiles.write(dir.resolve("config.json"), out -> out.write(c.toPrettyString().getBytes(StandardCharsets.UTF_8)));
    }

    private static void linear(Map<String, SafetensorsWriter.Tensor> w, SplittableRandom random, String name, int out, int in) {
        w.put(name + ".weight", normal(random, 0, (long) out * in, out, in));
        w.put(name + ".bias", normal(random, 0, out, out));
    }

    private static SafetensorsWriter.Tensor normal(SplittableRandom random, double mean, long n, long... shape) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) a[i] = (float) (mean + 0.02 * gaussian(random));
        return new SafetensorsWriter.Tensor(a, shape);
    }

    /** Standard normal by Box–Muller, so the weights depend only on the seed. */
    private static double gaussian(SplittableRandom random) {
        double u = 1.0 - random.nextDouble(), v = random.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
}
