package brm.imports.onnx;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

/**
 * Test fixture: a small random post-LN BERT encoder written as an ONNX model, in layouts the real exports in the
 * langchain4j jars do not have (those are all decomposed-LayerNorm opset 11 graphs). Weights get opaque names, so the
 * importer can only find their roles from the data flow.
 * <ul>
 *   <li>FUSED, opset 20: LayerNormalization and Gelu ops; q and k each scaled by d^-1/4 around the head split; the
 *       position range a Constant node.</li>
 *   <li>DECOMPOSED, opset 18: ReduceMean with its axes as an input; Mul(gamma, ..) operand order; 0.5 x applied before
 *       the (1 + erf) factor; scores divided by sqrt d.</li>
 *   <li>UNSUPPORTED: FUSED with the GELU replaced by Tanh, which the importer must refuse by name.</li>
 * </ul>
 * Sizes: vocab 40, hidden 16, 4 heads of 4, intermediate 24, 2 layers, 20 positions, 2 token types, eps 1e-6. The
 * graph's one output is the last hidden state [b, n, 16].
 */
final class TinyBertOnnx {
    enum Layout { FUSED, DECOMPOSED, UNSUPPORTED }

    static final int VOCAB = 40, HIDDEN = 16, HEADS = 4, HEAD_DIM = HIDDEN / HEADS, INTERMEDIATE = 24, LAYERS = 2, POSITIONS = 20, TYPES = 2;
    static final float EPS = 1e-6f;

    private static final int FLOAT = 1, INT64 = 7;

    private final Random random;
    private final Layout layout;
    private final List<byte[]> nodes = new ArrayList<>(), initializers = new ArrayList<>();
    private int values, tensors;
    private String mask;

    private TinyBertOnnx(Random random, Layout layout) {
        this.random = random;
        this.layout = layout;
    }

    /** A fresh random model in {@code layout}, as .onnx bytes. */
    static byte[] model(Random random, Layout layout) {
        return new TinyBertOnnx(random, layout).build();
    }

    /** A WordPiece tokenizer.json over the model's 40 ids: [PAD] [UNK] [CLS] [SEP] [MASK], then w5..w39. */
    static String tokenizerJson() {
        StringBuilder vocab = new StringBuilder();
        String[] specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
        for (int id = 0; id < VOCAB; id++)
            vocab.append(id == 0 ? "" : ",").append('"').append(id < specials.length ? specials[id] : "w" + id).append("\":").append(id);
        return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[],"
                + "\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":true},"
                + "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"post_processor\":null,\"decoder\":null,"
                + "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,"
                + "\"vocab\":{" + vocab + "}}}";
    }

    private byte[] build() {
        boolean fused = layout != Layout.DECOMPOSED;
        // additive mask [b, 1, 1, n]: 0 for tokens, -1e9 for padding
        mask = node("Cast", new String[]{node("Unsqueeze", "attention_mask", ints(1, 2))}, intAttribute("to", FLOAT));
        mask = node("Mul", node("Sub", scalar(1f), mask), scalar(-1e9f));
        // positions [1, n] = range[:, 0:n]
        long[] range = new long[POSITIONS];
        for (int i = 0; i < POSITIONS; i++) range[i] = i;
        String rangeValue = fused ? constant(longTensor("", new long[]{1, POSITIONS}, range)) : initializer(name -> longTensor(name, new long[]{1, POSITIONS}, range));
        String n = node("Unsqueeze", node("Gather", new String[]{node("Shape", "input_ids"), constant(longTensor("", new long[0], new long[]{1}))}, intAttribute("axis", 0)), ints(0));
        String positions = node("Slice", rangeValue, ints(0), n, ints(1));

        String words = node("Gather", weight(VOCAB, HIDDEN, 0.5), "input_ids");
        String types = node("Gather", weight(TYPES, HIDDEN, 0.5), "token_type_ids");
        String x = layerNorm(node("Add", node("Add", words, types), node("Gather", weight(POSITIONS, HIDDEN, 0.5), positions)));
        for (int l = 0; l < LAYERS; l++) x = encoderLayer(x);

        Proto graph = new Proto();
        for (byte[] node : nodes) graph.bytes(1, node);
        graph.string(2, "tiny-bert");
        for (byte[] t : initializers) graph.bytes(5, t);
        for (String input : List.of("input_ids", "attention_mask", "token_type_ids")) graph.message(11, valueInfo(input, INT64, "b", "n"));
        graph.message(12, valueInfo(x, FLOAT, "b", "n", HIDDEN));
        return new Proto().varint(1, 9).string(2, "brm-test").message(7, graph)
                .message(8, new Proto().string(1, "").varint(2, fused ? 20 : 18)).toByteArray();
    }

    private String encoderLayer(String x) {
        boolean fused = layout != Layout.DECOMPOSED;
        float quarter = (float) Math.pow(HEAD_DIM, -0.25);
        // value first: the importer must not rely on node order
        String v = node("Transpose", new String[]{splitHeads(dense(x, HIDDEN, HIDDEN, true))}, perm(0, 2, 1, 3));
        String qProjected = dense(x, HIDDEN, HIDDEN, false), kProjected = dense(x, HIDDEN, HIDDEN, true);
        String q = node("Transpose", new String[]{splitHeads(fused ? node("Mul", qProjected, scalar(quarter)) : qProjected)}, perm(0, 2, 1, 3));
        String k = node("Transpose", new String[]{splitHeads(kProjected)}, perm(0, 2, 3, 1));
        if (fused) k = node("Mul", scalar(quarter), k);
        String scores = node("MatMul", q, k);
        if (!fused) scores = node("Div", scores, scalar((float) Math.sqrt(HEAD_DIM)));
        String probs = node("Softmax", new String[]{node("Add", scores, mask)}, intAttribute("axis", -1));
        String context = node("MatMul", probs, v);
        String merged = node("Reshape", node("Transpose", new String[]{context}, perm(0, 2, 1, 3)), ints(0, 0, HIDDEN));
        String x1 = layerNorm(node("Add", x, dense(merged, HIDDEN, HIDDEN, false)));
        String up = dense(x1, HIDDEN, INTERMEDIATE, true);
        String act = switch (layout) {
            case FUSED -> node("Gelu", up);
            case UNSUPPORTED -> node("Tanh", up);
            case DECOMPOSED -> node("Mul", node("Mul", up, scalar(0.5f)),
                    node("Add", scalar(1f), node("Erf", node("Div", up, scalar((float) Math.sqrt(2))))));
        };
        return layerNorm(node("Add", dense(act, INTERMEDIATE, HIDDEN, false), x1));
    }

    private String splitHeads(String projected) {
        return node("Reshape", projected, ints(0, 0, HEADS, HEAD_DIM));
    }

    /** x W + b with W [in, out] and b [out]; biasFirst puts b on the Add's left. */
    private String dense(String x, int in, int out, boolean biasFirst) {
        String product = node("MatMul", x, weight(in, out, 1 / Math.sqrt(in)));
        String bias = weight(0, out, 0.1);
        return biasFirst ? node("Add", bias, product) : node("Add", product, bias);
    }

    private String layerNorm(String x) {
        String gamma = initializer(name -> floatTensor(name, new long[]{HIDDEN}, 1, 0.2)), beta = weight(0, HIDDEN, 0.1);
        if (layout != Layout.DECOMPOSED)
            return node("LayerNormalization", new String[]{x, gamma, beta}, intAttribute("axis", -1), floatAttribute("epsilon", EPS));
        String centered = node("Sub", x, node("ReduceMean", x, ints(-1)));
        String variance = node("ReduceMean", node("Pow", centered, scalar(2f)), ints(-1));
        String normalized = node("Div", centered, node("Sqrt", node("Add", variance, scalar(EPS))));
        return node("Add", node("Mul", gamma, normalized), beta);
    }

    // ---- graph building: every node's single output is a fresh value name ----

    private String node(String op, String... inputs) {
        return node(op, inputs, new byte[0][]);
    }

    private String node(String op, String[] inputs, byte[]... attributes) {
        String output = "v" + values++;
        Proto p = new Proto();
        for (String in : inputs) p.string(1, in);
        p.string(2, output).string(3, op.toLowerCase() + "_" + values).string(4, op);
        for (byte[] a : attributes) p.bytes(5, a);
        nodes.add(p.toByteArray());
        return output;
    }

    private String constant(byte[] tensor) {
        return node("Constant", new String[0], new Proto().string(1, "value").varint(20, 4).bytes(5, tensor).toByteArray());
    }

    private String ints(long... values) {
        return constant(longTensor("", new long[]{values.length}, values));
    }

    private String scalar(float v) {
        return constant(new Proto().varint(2, FLOAT).bytes(9, le(new float[]{v})).toByteArray());
    }

    /** Adds the initializer that tensor makes under a fresh opaque name; returns the name. */
    private String initializer(Function<String, byte[]> tensor) {
        String name = "t" + tensors++;
        initializers.add(tensor.apply(name));
        return name;
    }

    /** A random FP32 initializer, [rows, cols] or [cols] when rows is 0, N(0, scale^2). */
    private String weight(int rows, int cols, double scale) {
        return initializer(name -> floatTensor(name, rows == 0 ? new long[]{cols} : new long[]{rows, cols}, 0, scale));
    }

    private byte[] floatTensor(String name, long[] dims, double mean, double scale) {
        int size = 1;
        for (long d : dims) size *= (int) d;
        float[] data = new float[size];
        for (int i = 0; i < size; i++) data[i] = (float) (mean + scale * random.nextGaussian());
        Proto p = new Proto();
        for (long d : dims) p.varint(1, d);
        return p.varint(2, FLOAT).string(8, name).bytes(9, le(data)).toByteArray();
    }

    private static byte[] longTensor(String name, long[] dims, long[] values) {
        Proto packedDims = new Proto(), packedValues = new Proto();
        for (long d : dims) packedDims.rawVarint(d);
        for (long v : values) packedValues.rawVarint(v);
        Proto p = new Proto().bytes(1, packedDims.toByteArray()).varint(2, INT64).bytes(7, packedValues.toByteArray());
        return name.isEmpty() ? p.toByteArray() : p.string(8, name).toByteArray();
    }

    private static byte[] intAttribute(String name, long value) {
        return new Proto().string(1, name).varint(20, 2).varint(3, value).toByteArray();
    }

    private static byte[] floatAttribute(String name, float value) {
        return new Proto().string(1, name).varint(20, 1).fixed32(2, Float.floatToIntBits(value)).toByteArray();
    }

    private static byte[] perm(long... axes) {
        Proto p = new Proto().string(1, "perm").varint(20, 7);
        for (long a : axes) p.varint(8, a);
        return p.toByteArray();
    }

    private static Proto valueInfo(String name, int elemType, Object... dims) {
        Proto shape = new Proto();
        for (Object d : dims)
            shape.message(1, d instanceof String s ? new Proto().string(2, s) : new Proto().varint(1, (Integer) d));
        Proto tensorType = new Proto().varint(1, elemType).message(2, shape);
        return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
    }

    private static byte[] le(float[] data) {
        ByteBuffer b = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : data) b.putFloat(f);
        return b.array();
    }

    /** Protobuf wire-format writer: tag = field << 3 | wire type, then the value. */
    static final class Proto {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Proto rawVarint(long v) {
            while ((v & ~0x7fL) != 0) {
                out.write((int) (v & 0x7f) | 0x80);
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Proto varint(int field, long v) {
            return rawVarint(field << 3).rawVarint(v);
        }

        Proto fixed32(int field, int bits) {
            rawVarint(field << 3 | 5);
            for (int i = 0; i < 4; i++) out.write(bits >>> 8 * i & 0xff);
            return this;
        }

        Proto bytes(int field, byte[] b) {
            rawVarint(field << 3 | 2).rawVarint(b.length);
            out.writeBytes(b);
            return this;
        }

        Proto string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Proto message(int field, Proto m) {
            return bytes(field, m.toByteArray());
        }

        byte[] toByteArray() {
            return out.toByteArray();
        }
    }
}
