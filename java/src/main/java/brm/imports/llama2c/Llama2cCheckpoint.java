package brm.imports.llama2c;

import brm.BrmException;
import brm.io.SafetensorsWriter.Tensor;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * llama2.c's legacy (version-0) checkpoint, re-laid out as a Hugging Face Llama.
 *
 * File: seven little-endian int32 (dim d, hidden_dim h, n_layers L, n_heads, n_kv_heads, vocab_size V,
 * seq_len T), then float32 tensors, each stacked over the L layers:
 *   token_embedding[V,d] rms_att[L,d] wq[L,d,d] wk[L,kv,d] wv[L,kv,d] wo[L,d,d] rms_ffn[L,d]
 *   w1[L,h,d] w2[L,d,h] w3[L,h,d] rms_final[d] freq_cis_real[T,hd/2] freq_cis_imag[T,hd/2] (wcls[V,d])
 * with hd = d / n_heads and kv = hd·n_kv_heads. A negative vocab_size means the classifier wcls follows
 * (untied); otherwise the classifier is the token embedding. Matrices are [out, in] row-major, which is
 * nn.Linear's layout, so they map one to one: w1 → gate_proj, w3 → up_proj, w2 → down_proj. The
 * freq_cis tables are skipped (run.c and HF both recompute RoPE); a file without them is accepted too.
 *
 * RoPE: llama2.c rotates each head's adjacent pairs (x[2i], x[2i+1]) by the angle p·θ^(−2i/hd); HF's
 * rotate-half rotates (x[i], x[i+hd/2]) by the same angle. Reordering each head's output rows of wq and
 * wk as [0,2,…,hd−2, 1,3,…,hd−1] (HF's convert_llama_weights permute) turns one into the other; q and k
 * are permuted alike, so the attention scores q·k are unchanged.
 */
public final class Llama2cCheckpoint {
    static final int HEADER_BYTES = 7 * Integer.BYTES;
    /** "ak42": the magic of llama2.c's version-1/2 exports, which start with it instead of dim. */
    private static final int VERSIONED_MAGIC = 0x616b3432;
    /** The most values a Java array, hence one tensor, can hold. */
    private static final long MAX_TENSOR = Integer.MAX_VALUE - 8;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Llama2cCheckpoint() {}

    /** The header, checked; {@code freqCis}: whether the file stores the freq_cis tables. */
    public record Header(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize, int seqLen,
                         boolean tiedClassifier, boolean freqCis) {
        public int headSize() {
            return dim / heads;
        }

        public int kvDim() {
            return headSize() * kvHeads;
        }

        /**
         * Bytes of the whole file with or without the freq_cis tables ([T, hd/2] each); exact arithmetic,
         * since a bad header can describe more than 2^63 bytes.
         */
        long fileBytes(boolean withTables) {
            long perLayer = 2L * dim + 2L * dim * dim + 2L * kvDim() * dim + 3L * hiddenDim * dim;
            long floats = Math.addExact(Math.multiplyExact(layers, perLayer), (long) vocabSize * dim * (tiedClassifier ? 1 : 2) + dim);
            if (withTables) floats = Math.addExact(floats, freqCisFloats());
            return Math.addExact(HEADER_BYTES, Math.multiplyExact(Float.BYTES, floats));
        }

        long freqCisFloats() {
            return (long) seqLen * headSize();
        }

        String describe() {
            return "dim=" + dim + " hidden_dim=" + hiddenDim + " n_layers=" + layers + " n_heads=" + heads
                    + " n_kv_heads=" + kvHeads + " vocab_size=" + (tiedClassifier ? vocabSize : -vocabSize) + " seq_len=" + seqLen;
        }
    }

    /** Reads and checks the header of {@code bytes}, the whole of {@code file}, including its size. */
    public static Header header(Path file, MemorySegment bytes) {
        long size = bytes.byteSize();
        if (size < HEADER_BYTES)
            throw new BrmException(file + ": truncated llama2.c checkpoint: " + size + " bytes, less than the " + HEADER_BYTES + "-byte header");
        int[] f = new int[7];
        for (int i = 0; i < f.length; i++) f[i] = bytes.get(INT, (long) i * Integer.BYTES);
        if (f[0] == VERSIONED_MAGIC)
            throw new BrmException(file + ": llama2.c version-" + f[1] + " export (magic \"ak42\"); brm imports the legacy version-0 layout (llama2.c export.py --version 0)");
        String[] names = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
        for (int i = 0; i < f.length; i++) {
            boolean valid = i == 5 ? f[i] != 0 && f[i] != Integer.MIN_VALUE : f[i] > 0;
            if (!valid)
                throw new BrmException(file + ": bad llama2.c header: " + names[i] + " is " + f[i] + (i == 5 ? ", must be nonzero" : ", must be positive"));
        }
        int dim = f[0], heads = f[3], kvHeads = f[4];
        if (dim % heads != 0)
            throw new BrmException(file + ": bad llama2.c header: n_heads " + heads + " does not divide dim " + dim);
        if ((dim / heads) % 2 != 0)
            throw new BrmException(file + ": bad llama2.c header: head size " + dim / heads + " (dim / n_heads) is odd; RoPE rotates pairs");
        if (kvHeads > heads || heads % kvHeads != 0)
            throw new BrmException(file + ": bad llama2.c header: n_kv_heads " + kvHeads + " does not divide n_heads " + heads);
        long largest = Math.max((long) Math.abs(f[5]) * dim, Math.max((long) f[1] * dim, (long) dim * dim));
        if (largest > MAX_TENSOR)
            throw new BrmException(file + ": llama2.c header describes a tensor of " + largest + " values; brm holds at most " + MAX_TENSOR + " per tensor");
        Header parsed = new Header(dim, f[1], f[2], heads, kvHeads, Math.abs(f[5]), f[6], f[5] > 0, false);
        long withTables, weights;
        try {
            withTables = parsed.fileBytes(true);
            weights = parsed.fileBytes(false);
        } catch (ArithmeticException e) {
            throw new BrmException(file + ": bad llama2.c header (" + parsed.describe() + "): it describes more than 2^63 bytes");
        }
        if (size != withTables && size != weights)
            throw new BrmException(file + ": size " + size + " bytes does not match its header (" + parsed.describe() + "): expected "
                    + withTables + " bytes (with the freq_cis tables) or " + weights + " (without)");
        return new Header(dim, f[1], f[2], heads, kvHeads, parsed.vocabSize(), f[6], parsed.tiedClassifier(), size == withTables);
    }

    /** The weights of {@code bytes} (a file whose {@link #header} is {@code h}) under HF Llama names. */
    public static Map<String, Tensor> huggingFaceTensors(Header h, MemorySegment bytes) {
        int d = h.dim(), kv = h.kvDim(), hidden = h.hiddenDim(), hd = h.headSize();
        var in = new Cursor(bytes, HEADER_BYTES);
        Map<String, Tensor> out = new LinkedHashMap<>();
        out.put("model.embed_tokens.weight", new Tensor(in.take((long) h.vocabSize() * d), h.vocabSize(), d));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "input_layernorm"), new Tensor(in.take(d), d));
        for (int l = 0; l < h.layers(); l++)
            out.put(layer(l, "self_attn.q_proj"), new Tensor(pairsToHalves(in.take((long) d * d), h.heads(), hd, d), d, d));
        for (int l = 0; l < h.layers(); l++)
            out.put(layer(l, "self_attn.k_proj"), new Tensor(pairsToHalves(in.take((long) kv * d), h.kvHeads(), hd, d), kv, d));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "self_attn.v_proj"), new Tensor(in.take((long) kv * d), kv, d));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "self_attn.o_proj"), new Tensor(in.take((long) d * d), d, d));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "post_attention_layernorm"), new Tensor(in.take(d), d));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "mlp.gate_proj"), new Tensor(in.take((long) hidden * d), hidden, d));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "mlp.down_proj"), new Tensor(in.take((long) d * hidden), d, hidden));
        for (int l = 0; l < h.layers(); l++) out.put(layer(l, "mlp.up_proj"), new Tensor(in.take((long) hidden * d), hidden, d));
        out.put("model.norm.weight", new Tensor(in.take(d), d));
        if (h.freqCis()) in.skip(h.freqCisFloats());
        if (!h.tiedClassifier()) out.put("lm_head.weight", new Tensor(in.take((long) h.vocabSize() * d), h.vocabSize(), d));
        return out;
    }

    /** HF's config.json for the model; eps and θ are the values llama2.c's run.c hard-codes. */
    public static ObjectNode config(Header h) {
        ObjectNode c = JsonNodeFactory.instance.objectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
        c.put("hidden_size", h.dim());
        c.put("intermediate_size", h.hiddenDim());
        c.put("num_hidden_layers", h.layers());
        c.put("num_attention_heads", h.heads());
        c.put("num_key_value_heads", h.kvHeads());
        c.put("head_dim", h.headSize());
        c.put("vocab_size", h.vocabSize());
        c.put("max_position_embeddings", h.seqLen());
        c.put("hidden_act", "silu");
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 10000.0);
        c.putNull("rope_scaling");
        c.put("attention_bias", false);
        c.put("mlp_bias", false);
        c.put("tie_word_embeddings", h.tiedClassifier());
        c.put("bos_token_id", Llama2cTokenizer.BOS);
        c.put("eos_token_id", Llama2cTokenizer.EOS);
        c.put("torch_dtype", "float32");
        return c;
    }

    /**
     * w [heads·hd, cols] → the same rows with each head's reordered from llama2.c's pair order to HF's
     * halves order: HF row i ← row 2i, HF row hd/2 + i ← row 2i + 1.
     */
    static float[] pairsToHalves(float[] w, int heads, int hd, int cols) {
        float[] out = new float[w.length];
        int half = hd / 2;
        for (int head = 0; head < heads; head++)
            for (int i = 0; i < half; i++)
                for (int odd = 0; odd < 2; odd++) {
                    int from = head * hd + 2 * i + odd, to = head * hd + odd * half + i;
                    System.arraycopy(w, from * cols, out, to * cols, cols);
                }
        return out;
    }

    private static String layer(int l, String module) {
        return "model.layers." + l + "." + module + ".weight";
    }

    /** Reads consecutive float32 tensors; the header has already checked that the file holds them all. */
    private static final class Cursor {
        private final MemorySegment bytes;
        private long offset;

        Cursor(MemorySegment bytes, long offset) {
            this.bytes = bytes;
            this.offset = offset;
        }

        /** {@code count} is at most MAX_TENSOR, which the header has checked. */
        float[] take(long count) {
            float[] values = new float[(int) count];
            MemorySegment.copy(bytes, FLOAT, offset, values, 0, values.length);
            offset += count * Float.BYTES;
            return values;
        }

        void skip(long count) {
            offset += count * Float.BYTES;
        }
    }
}
