package brm.imports.onnx;

import brm.BrmException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The few ONNX messages a BERT import needs, read straight from the protobuf wire format (onnx.proto):
 *
 * <pre>
 *   ModelProto     1 ir_version, 7 graph, 8 opset_import {1 domain, 2 version}
 *   GraphProto     1 node, 5 initializer, 11 input, 12 output (ValueInfoProto {1 name})
 *   NodeProto      1 input, 2 output, 3 name, 4 op_type, 5 attribute, 7 domain
 *   AttributeProto 1 name, 2 f, 3 i, 4 s, 5 t, 7 floats, 8 ints, 20 type
 *   TensorProto    1 dims, 2 data_type, 4 float_data, 5 int32_data, 7 int64_data, 8 name, 9 raw_data, 14 data_location
 * </pre>
 *
 * A record is a tag varint (field number &lt;&lt; 3 | wire type) then a value: 0 varint, 1 fixed64, 2 length-delimited
 * (strings, bytes, messages, packed repeated scalars), 5 fixed32. Unknown fields are skipped. Tensor data stays a view
 * of the file's bytes until a caller asks for it.
 */
record OnnxModel(long irVersion, Map<String, Long> opsets, Graph graph) {

    public record Graph(List<Node> nodes, Map<String, Tensor> initializers, List<String> inputs, List<String> outputs) {
        boolean external() {
            return initializers.values().stream().anyMatch(Tensor::external);
        }
    }

    public record Node(String name, String opType, String domain, List<String> inputs, List<String> outputs,
                       Map<String, Attribute> attributes) {
        /** Input {@code i}, or "" where the node has fewer inputs (ONNX's mark of an omitted optional input). */
        public String input(int i) {
            return i < inputs.size() ? inputs.get(i) : "";
        }

        public String output() {
            return outputs.getFirst();
        }
    }

    /** One attribute; only the field its {@code type} names is meaningful. */
    public record Attribute(String name, int type, float f, long i, byte[] s, Tensor t, float[] floats, long[] ints) {}

    public static final int FLOAT = 1, INT32 = 6, INT64 = 7;

    /**
     * A tensor value: {@code dims} row-major, data either little-endian {@code raw} bytes or one of the typed
     * lists (float_data, int32_data, int64_data).
     */
    public record Tensor(String name, int dataType, long[] dims, ByteBuffer raw, float[] floatData, long[] intData,
                         boolean external) {
        public long size() {
            long n = 1;
            for (long d : dims) n *= d;
            return n;
        }

        /** FP32 values, row-major; [size()]. */
        public float[] floats() {
            if (dataType != FLOAT) throw new IllegalArgumentException(describe() + " is not FLOAT");
            if (floatData != null) return floatData;
            float[] out = new float[raw.remaining() / 4];
            raw.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
            return out;
        }

        /** Integer values (INT64 or INT32), row-major; [size()]. */
        public long[] longs() {
            if (dataType != INT64 && dataType != INT32) throw new IllegalArgumentException(describe() + " is not an integer tensor");
            if (intData != null) return intData;
            ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            long[] out = new long[(int) size()];
            for (int k = 0; k < out.length; k++) out[k] = dataType == INT64 ? b.getLong() : b.getInt();
            return out;
        }

        private String describe() {
            return "tensor " + name + " " + Arrays.toString(dims);
        }
    }

    /** Parses a whole .onnx file; {@code file} names it in errors. */
    public static OnnxModel parse(byte[] bytes, String file) {
        try {
            OnnxModel model = readModel(new Reader(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN), 0, bytes.length));
            if (model.graph == null) throw new BrmException(file + ": not an ONNX model (no graph)");
            if (model.graph.external())
                throw new BrmException(file + ": weights are stored in external data files, which brm does not read");
            return model;
        } catch (Corrupt e) {
            throw new BrmException(file + ": not a valid ONNX model (truncated or corrupt at byte " + e.offset + ": " + e.getMessage() + ")");
        }
    }

    private static OnnxModel readModel(Reader r) {
        long ir = -1;
        Map<String, Long> opsets = new LinkedHashMap<>();
        Graph graph = null;
        while (r.more()) {
            int tag = r.tag();
            switch (tag) {
                case 1 << 3 -> ir = r.varint();
                case 7 << 3 | 2 -> graph = readGraph(r.message());
                case 8 << 3 | 2 -> {
                    Reader o = r.message();
                    String domain = "";
                    long version = 0;
                    while (o.more()) {
                        int t = o.tag();
                        if (t == (1 << 3 | 2)) domain = o.string();
                        else if (t == 2 << 3) version = o.varint();
                        else o.skip(t);
                    }
                    opsets.put(domain, version);
                }
                default -> r.skip(tag);
            }
        }
        if (ir < 0) throw new Corrupt("no ir_version", r.end);
        return new OnnxModel(ir, opsets, graph);
    }

    private static Graph readGraph(Reader r) {
        List<Node> nodes = new ArrayList<>();
        Map<String, Tensor> initializers = new LinkedHashMap<>();
        List<String> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        while (r.more()) {
            int tag = r.tag();
            switch (tag) {
                case 1 << 3 | 2 -> nodes.add(readNode(r.message()));
                case 5 << 3 | 2 -> {
                    Tensor t = readTensor(r.message());
                    initializers.put(t.name, t);
                }
                case 11 << 3 | 2 -> inputs.add(valueName(r.message()));
                case 12 << 3 | 2 -> outputs.add(valueName(r.message()));
                default -> r.skip(tag);
            }
        }
        return new Graph(nodes, initializers, inputs, outputs);
    }

    private static String valueName(Reader r) {
        String name = "";
        while (r.more()) {
            int tag = r.tag();
            if (tag == (1 << 3 | 2)) name = r.string();
            else r.skip(tag);
        }
        return name;
    }

    private static Node readNode(Reader r) {
        List<String> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        String name = "", op = "", domain = "";
        Map<String, Attribute> attributes = new HashMap<>();
        while (r.more()) {
            int tag = r.tag();
            switch (tag) {
                case 1 << 3 | 2 -> inputs.add(r.string());
                case 2 << 3 | 2 -> outputs.add(r.string());
                case 3 << 3 | 2 -> name = r.string();
                case 4 << 3 | 2 -> op = r.string();
                case 7 << 3 | 2 -> domain = r.string();
                case 5 << 3 | 2 -> {
                    Attribute a = readAttribute(r.message());
                    attributes.put(a.name, a);
                }
                default -> r.skip(tag);
            }
        }
        if (outputs.isEmpty()) throw new Corrupt("node " + name + " (" + op + ") has no output", r.end);
        return new Node(name, op, domain, inputs, outputs, attributes);
    }

    private static Attribute readAttribute(Reader r) {
        String name = "";
        int type = 0;
        float f = 0;
        long i = 0;
        byte[] s = null;
        Tensor t = null;
        List<Float> floats = new ArrayList<>();
        List<Long> ints = new ArrayList<>();
        while (r.more()) {
            int tag = r.tag();
            switch (tag) {
                case 1 << 3 | 2 -> name = r.string();
                case 2 << 3 | 5 -> f = Float.intBitsToFloat(r.fixed32());
                case 3 << 3 -> i = r.varint();
                case 4 << 3 | 2 -> s = r.bytes();
                case 5 << 3 | 2 -> t = readTensor(r.message());
                case 7 << 3 | 5 -> floats.add(Float.intBitsToFloat(r.fixed32()));
                case 7 << 3 | 2 -> {
                    Reader p = r.message();
                    while (p.more()) floats.add(Float.intBitsToFloat(p.fixed32()));
                }
                case 8 << 3 -> ints.add(r.varint());
                case 8 << 3 | 2 -> {
                    Reader p = r.message();
                    while (p.more()) ints.add(p.varint());
                }
                case 20 << 3 -> type = (int) r.varint();
                default -> r.skip(tag);
            }
        }
        float[] fs = new float[floats.size()];
        for (int k = 0; k < fs.length; k++) fs[k] = floats.get(k);
        return new Attribute(name, type, f, i, s, t, fs, ints.stream().mapToLong(Long::longValue).toArray());
    }

    private static Tensor readTensor(Reader r) {
        String name = "";
        int dataType = 0;
        List<Long> dims = new ArrayList<>();
        ByteBuffer raw = null;
        List<Float> floats = null;
        List<Long> ints = null;
        boolean external = false;
        while (r.more()) {
            int tag = r.tag();
            switch (tag) {
                case 1 << 3 -> dims.add(r.varint());
                case 1 << 3 | 2 -> {
                    Reader p = r.message();
                    while (p.more()) dims.add(p.varint());
                }
                case 2 << 3 -> dataType = (int) r.varint();
                case 4 << 3 | 5 -> (floats = floats == null ? new ArrayList<>() : floats).add(Float.intBitsToFloat(r.fixed32()));
                case 4 << 3 | 2 -> {
                    Reader p = r.message();
                    if (floats == null) floats = new ArrayList<>();
                    while (p.more()) floats.add(Float.intBitsToFloat(p.fixed32()));
                }
                case 5 << 3, 7 << 3 -> (ints = ints == null ? new ArrayList<>() : ints).add(r.varint());
                case 5 << 3 | 2, 7 << 3 | 2 -> {
                    Reader p = r.message();
                    if (ints == null) ints = new ArrayList<>();
                    boolean int32 = tag >>> 3 == 5;
                    while (p.more()) ints.add(int32 ? (long) (int) p.varint() : p.varint());
                }
                case 8 << 3 | 2 -> name = r.string();
                case 9 << 3 | 2 -> raw = r.view();
                case 14 << 3 -> external = r.varint() == 1;
                default -> r.skip(tag);
            }
        }
        float[] fd = null;
        if (floats != null) {
            fd = new float[floats.size()];
            for (int k = 0; k < fd.length; k++) fd[k] = floats.get(k);
        }
        long[] id = ints == null ? null : ints.stream().mapToLong(Long::longValue).toArray();
        if (raw == null && fd == null && id == null) raw = ByteBuffer.allocate(0);
        Tensor t = new Tensor(name, dataType, dims.stream().mapToLong(Long::longValue).toArray(), raw, fd, id, external);
        checkSize(t, r.end);
        return t;
    }

    /** The data of the types brm reads (FLOAT, INT32, INT64) must hold exactly the values its dims promise. */
    private static void checkSize(Tensor t, int offset) {
        int width = t.dataType == FLOAT || t.dataType == INT32 ? 4 : t.dataType == INT64 ? 8 : 0;
        if (width == 0 || t.external) return;
        long size = 1;
        for (long d : t.dims) {
            if (d < 0 || d > Integer.MAX_VALUE || (size *= d) > Integer.MAX_VALUE)
                throw new Corrupt("tensor " + t.name + " has dims " + Arrays.toString(t.dims), offset);
        }
        long held = t.raw != null ? t.raw.remaining() / width : t.floatData != null ? t.floatData.length : t.intData.length;
        boolean typed = t.dataType == FLOAT ? t.floatData != null : t.intData != null;
        if (held != size || t.raw != null && t.raw.remaining() % width != 0 || t.raw == null && !typed)
            throw new Corrupt("tensor " + t.name + " " + Arrays.toString(t.dims) + " does not hold " + size + " values", offset);
    }

    private static final class Corrupt extends RuntimeException {
        final long offset;

        Corrupt(String message, long offset) {
            super(message);
            this.offset = offset;
        }
    }

    /** Wire-format cursor over bytes [pos, end) of one buffer; offsets stay absolute so errors can name them. */
    private static final class Reader {
        private final ByteBuffer buf;
        private int pos;
        private final int end;

        Reader(ByteBuffer buf, int pos, int end) {
            this.buf = buf;
            this.pos = pos;
            this.end = end;
        }

        boolean more() {
            return pos < end;
        }

        int tag() {
            long tag = varint();
            if (tag >>> 3 == 0 || tag > Integer.MAX_VALUE) throw new Corrupt("bad field tag " + tag, pos);
            return (int) tag;
        }

        long varint() {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) throw new Corrupt("varint runs past the end of its message", pos);
                byte b = buf.get(pos++);
                value |= (long) (b & 0x7f) << shift;
                if (b >= 0) return value;
            }
            throw new Corrupt("varint longer than 10 bytes", pos);
        }

        int fixed32() {
            need(4);
            int v = buf.getInt(pos);
            pos += 4;
            return v;
        }

        private int length() {
            long n = varint();
            if (n < 0 || n > end - pos) throw new Corrupt("field of " + n + " bytes runs past the end of its message", pos);
            return (int) n;
        }

        Reader message() {
            int n = length();
            Reader inner = new Reader(buf, pos, pos + n);
            pos += n;
            return inner;
        }

        ByteBuffer view() {
            int n = length();
            ByteBuffer v = buf.slice(pos, n);
            pos += n;
            return v;
        }

        byte[] bytes() {
            byte[] out = new byte[length()];
            buf.get(pos, out);
            pos += out.length;
            return out;
        }

        String string() {
            return new String(bytes(), StandardCharsets.UTF_8);
        }

        void skip(int tag) {
            switch (tag & 7) {
                case 0 -> varint();
                case 1 -> {
                    need(8);
                    pos += 8;
                }
                case 2 -> {
                    int n = length(); // before the +=, which would read pos first
                    pos += n;
                }
                case 5 -> {
                    need(4);
                    pos += 4;
                }
                default -> throw new Corrupt("unknown wire type " + (tag & 7) + " (field " + (tag >>> 3) + ")", pos);
            }
        }

        private void need(int n) {
            if (end - pos < n) throw new Corrupt("fixed-width field runs past the end of its message", pos);
        }
    }
}
