package brm.io;

import brm.BrmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsTest {
    @TempDir
    Path dir;
    final Random random = new Random();

    float[] randomFloats(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) random.nextGaussian();
        return a;
    }

    @Test
    void writeThenReadRoundTrips() {
        float[] a = randomFloats(6), b = randomFloats(35);
        Path file = dir.resolve("m.safetensors");
        SafetensorsWriter.write(file, Map.of("z.weight", new SafetensorsWriter.Tensor(a, 2, 3),
                "a.bias", new SafetensorsWriter.Tensor(b, 5, 7)), Map.of("format", "pt"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(a, f.floats("z.weight", 2, 3));
            assertArrayEquals(b, f.floats("a.bias", 5, 7));
            assertEquals("pt", f.metadata().get("format"));
            var e = assertThrows(BrmException.class, () -> f.floats("z.weight", 3, 2));
            assertTrue(e.getMessage().contains("z.weight") && e.getMessage().contains("[2, 3]"), e.getMessage());
            e = assertThrows(BrmException.class, () -> f.floats("missing", 1));
            assertTrue(e.getMessage().contains("missing tensor missing"), e.getMessage());
        }
    }

    /** Builds a file by hand so every dtype and every corruption can be expressed. */
    Path handMade(String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h).put(data);
        Path file = Files.createTempFile(dir, "t", ".safetensors");
        Files.write(file, buf.array());
        return file;
    }

    @Test
    void convertsHalfPrecisionTypes() throws IOException {
        float[] values = randomFloats(8);
        ByteBuffer f16 = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer bf16 = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        float[] expectF16 = new float[8], expectBf16 = new float[8];
        for (int i = 0; i < 8; i++) {
            short h = Float.floatToFloat16(values[i]);
            f16.putShort(h);
            expectF16[i] = Float.float16ToFloat(h);
            int bits = Float.floatToRawIntBits(values[i]) & 0xffff0000; // truncation is a valid bf16 value
            bf16.putShort((short) (bits >>> 16));
            expectBf16[i] = Float.intBitsToFloat(bits);
        }
        byte[] data = new byte[32];
        System.arraycopy(f16.array(), 0, data, 0, 16);
        System.arraycopy(bf16.array(), 0, data, 16, 16);
        Path file = handMade("{\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[16,32]}}", data);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(expectF16, f.floats("h", 2, 4));
            assertArrayEquals(expectBf16, f.floats("b", 8));
        }
    }

    void assertRejected(Path file, String... fragments) {
        var e = assertThrows(BrmException.class, () -> SafetensorsFile.open(file).close());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String s : fragments) assertTrue(e.getMessage().contains(s), "'" + s + "' not in: " + e.getMessage());
        assertEquals(1, e.getMessage().lines().count());
    }

    @Test
    void rejectsCorruptFiles() throws IOException {
        String one = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRejected(handMade(one, new byte[4]), "out of range");
        assertRejected(handMade(one, new byte[12]), "trailing bytes");
        assertRejected(handMade("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", new byte[8]), "out of range");
        assertRejected(handMade("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]), "expected 12");
        assertRejected(handMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]), "overlaps");
        assertRejected(handMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]), "hole");
        assertRejected(handMade("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]), "unsupported dtype Q4");
        assertRejected(handMade("{\"w\":", new byte[0]), "not valid JSON");
        assertRejected(handMade("{\"w\":{\"shape\":[2]}}", new byte[0]), "tensor w", "dtype");
        // a header length beyond the cap, and one beyond the file
        Path huge = dir.resolve("huge.safetensors");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(SafetensorsFile.MAX_HEADER_BYTES + 1).array());
        assertRejected(huge, "header length");
        Path truncated = dir.resolve("truncated.safetensors");
        Files.write(truncated, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(100).array());
        assertRejected(truncated, "truncated");
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[3]);
        assertRejected(tiny, "shorter than");
        assertRejected(dir.resolve("absent.safetensors"), "no such file");
    }

    @Test
    void truncatingAValidFileIsDetected() throws IOException {
        Path file = dir.resolve("ok.safetensors");
        SafetensorsWriter.write(file, Map.of("w", new SafetensorsWriter.Tensor(randomFloats(64), 8, 8)), null);
        byte[] bytes = Files.readAllBytes(file);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 1 - random.nextInt(64)));
        assertRejected(cut);
    }

    @Test
    void shardedDirectoriesResolveEveryTensor() throws IOException {
        float[] a = randomFloats(4), b = randomFloats(9);
        SafetensorsWriter.write(dir.resolve("model-00001-of-00002.safetensors"), Map.of("a", new SafetensorsWriter.Tensor(a, 4)), null);
        SafetensorsWriter.write(dir.resolve("model-00002-of-00002.safetensors"), Map.of("b", new SafetensorsWriter.Tensor(b, 3, 3)), null);
        Map<String, String> map = new LinkedHashMap<>();
        map.put("a", "model-00001-of-00002.safetensors");
        map.put("b", "model-00002-of-00002.safetensors");
        Files.writeString(dir.resolve(ModelWeights.INDEX), Jsonl.JSON.createObjectNode().set("weight_map", Jsonl.JSON.valueToTree(map)).toString());
        try (ModelWeights w = ModelWeights.open(dir)) {
            assertArrayEquals(a, w.floats("a", 4));
            assertArrayEquals(b, w.floats("b", 3, 3));
            var e = assertThrows(BrmException.class, () -> w.floats("c", 1));
            assertTrue(e.getMessage().contains("missing tensor c"));
        }
        var e = assertThrows(BrmException.class, () -> ModelWeights.open(dir.resolve("nowhere")));
        assertTrue(e.getMessage().contains("no model.safetensors"), e.getMessage());
    }
}
