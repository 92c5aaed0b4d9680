package brm.io;

import brm.BrmException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file, memory-mapped as a single {@link MemorySegment} (no 2 GB windows).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
 * {@code {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}}},
 * then the data; offsets are relative to byte 8 + N. Like the reference implementation we
 * require the tensors to tile the data region exactly: in bounds, no overlap, no holes.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Same cap as the reference implementation: a header over 100 MB is refused unread. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Where one tensor lives in the file. */
    public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
        public long elementCount() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < 8) throw new BrmException(path + ": not a safetensors file (" + size + " bytes, shorter than its 8-byte header length)");
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLength = file.get(I64_LE, 0);
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES)
                throw new BrmException(path + ": safetensors header length " + Long.toUnsignedString(headerLength)
                        + " is outside 2.." + MAX_HEADER_BYTES + " bytes");
            if (8 + headerLength > size)
                throw new BrmException(path + ": truncated: header claims " + headerLength + " bytes but the file has " + (size - 8) + " after the length");
            byte[] header = file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
            MemorySegment data = file.asSlice(8 + headerLength);
            var parsed = parseHeader(path, header, data.byteSize());
            return new SafetensorsFile(path, arena, data, parsed.tensors, parsed.metadata);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new BrmException(path + ": no such file");
        } catch (IOException e) {
            arena.close();
            throw new BrmException(path + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private record Header(Map<String, TensorInfo> tensors, Map<String, String> metadata) {}

    private static Header parseHeader(Path path, byte[] header, long dataBytes) {
        String json;
        try {
            json = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(header)).toString();
        } catch (CharacterCodingException e) {
            throw new BrmException(path + ": safetensors header is not valid UTF-8");
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json.stripTrailing());
        } catch (IOException e) {
            throw new BrmException(path + ": safetensors header is not valid JSON: " + firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) throw new BrmException(path + ": safetensors header is not a JSON object");
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            var entry = it.next();
            String name = entry.getKey();
            JsonNode node = entry.getValue();
            if (name.equals("__metadata__")) {
                if (!node.isObject()) throw new BrmException(path + ": __metadata__ is not an object");
                node.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            String where = path + ": tensor " + name;
            JsonNode dtype = node.get("dtype"), shape = node.get("shape"), offsets = node.get("data_offsets");
            if (dtype == null || !dtype.isTextual() || shape == null || !shape.isArray() || offsets == null
                    || !offsets.isArray() || offsets.size() != 2)
                throw new BrmException(where + ": entry needs dtype, shape and data_offsets [begin, end]");
            DType type = DType.parse(dtype.asText(), where);
            long[] dims = new long[shape.size()];
            long count = 1;
            for (int i = 0; i < dims.length; i++) {
                JsonNode d = shape.get(i);
                if (!d.canConvertToLong() || d.asLong() < 0) throw new BrmException(where + ": bad shape " + shape);
                dims[i] = d.asLong();
                count = Math.multiplyExact(count, dims[i]);
            }
            long begin = offsets.get(0).asLong(-1), end = offsets.get(1).asLong(-1);
            if (begin < 0 || end < begin || end > dataBytes)
                throw new BrmException(where + ": data_offsets [" + offsets.get(0) + ", " + offsets.get(1)
                        + "] out of range (data region is " + dataBytes + " bytes)");
            if (end - begin != count * type.bytes)
                throw new BrmException(where + ": " + (end - begin) + " bytes for shape " + shape + " of " + type
                        + " (expected " + count * type.bytes + ")");
            tensors.put(name, new TensorInfo(name, type, dims, begin, end));
        }
        List<TensorInfo> sorted = new ArrayList<>(tensors.values());
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = 0;
        for (TensorInfo t : sorted) {
            if (t.begin() < expected)
                throw new BrmException(path + ": tensor " + t.name() + " overlaps the tensor before it (offset " + t.begin() + " < " + expected + ")");
            if (t.begin() > expected)
                throw new BrmException(path + ": hole in the data region before tensor " + t.name() + " (offset " + t.begin() + ", expected " + expected + ")");
            expected = t.end();
        }
        if (expected != dataBytes)
            throw new BrmException(path + ": data region has " + dataBytes + " bytes but the tensors cover " + expected
                    + (expected < dataBytes ? " (trailing bytes)" : ""));
        return new Header(Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    public Path path() {
        return path;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new BrmException(path + ": missing tensor " + name);
        return t;
    }

    /** The raw bytes of one tensor, a view into the mapping (valid until {@link #close()}). */
    public MemorySegment bytes(String name) {
        TensorInfo t = info(name);
        return data.asSlice(t.begin(), t.end() - t.begin());
    }

    /** Tensor {@code name} converted to FP32, row-major; it must have exactly {@code expectedShape}. */
    public float[] floats(String name, long... expectedShape) {
        TensorInfo t = info(name);
        if (!Arrays.equals(t.shape(), expectedShape))
            throw new BrmException(path + ": tensor " + name + " has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(expectedShape));
        return floats(t);
    }

    /** Tensor converted to FP32, whatever its shape. */
    public float[] floats(TensorInfo t) {
        long n = t.elementCount();
        if (n > Integer.MAX_VALUE - 8) throw new BrmException(path + ": tensor " + t.name() + " has " + n + " elements, too many for one array");
        float[] out = new float[(int) n];
        MemorySegment src = data.asSlice(t.begin(), t.end() - t.begin());
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(src, F32_LE, 0, out, 0, out.length);
            case F16 -> {
                for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(src.get(I16_LE, 2L * i));
            }
            case BF16 -> {
                for (int i = 0; i < out.length; i++) out[i] = Float.intBitsToFloat((src.get(I16_LE, 2L * i) & 0xffff) << 16);
            }
            case F64 -> {
                for (int i = 0; i < out.length; i++) out[i] = (float) src.get(F64_LE, 8L * i);
            }
            default -> throw new BrmException(path + ": tensor " + t.name() + " is " + t.dtype() + ", not a floating-point type");
        }
        return out;
    }

    /** Tensor {@code name}, stored as F64, read exactly; it must have exactly {@code expectedShape}. */
    public double[] doubles(String name, long... expectedShape) {
        TensorInfo t = info(name);
        if (!Arrays.equals(t.shape(), expectedShape))
            throw new BrmException(path + ": tensor " + name + " has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(expectedShape));
        if (t.dtype() != DType.F64) throw new BrmException(path + ": tensor " + name + " is " + t.dtype() + ", expected F64");
        double[] out = new double[Math.toIntExact(t.elementCount())];
        MemorySegment.copy(data.asSlice(t.begin(), t.end() - t.begin()), F64_LE, 0, out, 0, out.length);
        return out;
    }

    @Override
    public void close() {
        arena.close();
    }
}
