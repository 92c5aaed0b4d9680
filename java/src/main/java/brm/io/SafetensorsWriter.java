package brm.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes FP32 or FP64 tensors as a safetensors file, atomically. Tensors are laid out in name order
 * (as the reference implementation does) and the header is padded with spaces to 8 bytes.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {}

    /** One tensor to write: row-major data, FP32 ({@code data}) or FP64 ({@code doubles}, data null), and its shape. */
    public record Tensor(float[] data, double[] doubles, long... shape) {
        public Tensor {
            long n = 1;
            for (long d : shape) n *= d;
            int length = data != null ? data.length : doubles.length;
            if (n != length)
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not hold " + length + " values");
        }

        public Tensor(float[] data, long... shape) {
            this(data, null, shape);
        }

        /** An FP64 tensor. */
        public static Tensor f64(double[] values, long... shape) {
            return new Tensor(null, values, shape);
        }

        long bytes() {
            return data != null ? 4L * data.length : 8L * doubles.length;
        }
    }

    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) {
        Map<String, Tensor> sorted = new TreeMap<>(tensors);
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            new TreeMap<>(metadata).forEach(meta::put);
        }
        long offset = 0;
        for (var e : sorted.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", e.getValue().data() != null ? "F32" : "F64");
            var shape = t.putArray("shape");
            for (long d : e.getValue().shape()) shape.add(d);
            long bytes = e.getValue().bytes();
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] headerBytes = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (headerBytes.length + 7) & ~7;
        byte[] headerPadded = Arrays.copyOf(headerBytes, padded);
        Arrays.fill(headerPadded, headerBytes.length, padded, (byte) ' ');
        AtomicFiles.write(path, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(headerPadded);
            ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : sorted.values()) {
                int n = t.data() != null ? t.data().length : t.doubles().length;
                for (int i = 0; i < n; i++) {
                    if (buf.remaining() < 8) {
                        out.write(buf.array(), 0, buf.position());
                        buf.clear();
                    }
                    if (t.data() != null) buf.putFloat(t.data()[i]);
                    else buf.putDouble(t.doubles()[i]);
                }
            }
            out.write(buf.array(), 0, buf.position());
        });
    }
}
