package brm.imports.llama2c;

import brm.BrmException;
import brm.imports.ImportDirectory;
import brm.imports.llama2c.Llama2cCheckpoint.Header;
import brm.imports.llama2c.Llama2cTokenizer.Token;
import brm.io.ModelWeights;
import brm.io.SafetensorsWriter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * {@code brm import llama2c}: a llama2.c checkpoint and tokenizer become a Hugging Face Llama directory:
 * model.safetensors and config.json ({@link Llama2cCheckpoint}), tokenizer.json, tokenizer_config.json
 * and special_tokens_map.json ({@link Llama2cTokenizer}), and brm_import.json, which records the
 * SHA-256 of both inputs. Idempotence, --force and the atomic install are {@link ImportDirectory}'s.
 */
public final class Llama2cImporter {
    public static final String RECORD = ImportDirectory.RECORD;
    /** Version of the output layout; a record of another version is not the same import. */
    private static final int FORMAT = 1;
    private static final List<String> OUTPUTS = List.of(ModelWeights.SINGLE, "config.json", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", RECORD);
    private static final ObjectMapper JSON = new ObjectMapper();

    private Llama2cImporter() {}

    /** What an import did: {@code unchanged} when {@code dir} already held this import. */
    public record Result(Path dir, Header header, boolean unchanged) {}

    /**
     * Imports {@code checkpoint} (llama2.c version-0 export) and {@code tokenizer} (llama2.c
     * tokenizer.bin) into {@code outDir}; {@code force} replaces a directory that holds something else.
     */
    public static Result importModel(Path checkpoint, Path tokenizer, Path outDir, boolean force) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment weights = map(checkpoint, arena);
            Header header = Llama2cCheckpoint.header(checkpoint, weights);
            byte[] tokenizerBytes = ImportDirectory.read(tokenizer);
            List<Token> tokens = Llama2cTokenizer.read(tokenizer, tokenizerBytes, header.vocabSize());
            String checkpointHash = sha256(weights), tokenizerHash = sha256(MemorySegment.ofArray(tokenizerBytes));
            ObjectNode record = JSON.createObjectNode();
            record.put("importer", "brm import llama2c");
            record.put("format", FORMAT);
            record.putObject("checkpoint").put("file", checkpoint.getFileName().toString()).put("sha256", checkpointHash);
            record.putObject("tokenizer").put("file", tokenizer.getFileName().toString()).put("sha256", tokenizerHash);
            String identity = sha256(MemorySegment.ofArray((FORMAT + "\0" + checkpointHash + "\0" + tokenizerHash).getBytes(StandardCharsets.UTF_8)));
            boolean written = ImportDirectory.install(outDir, identity, record, OUTPUTS, force, staging -> {
                SafetensorsWriter.write(staging.resolve(ModelWeights.SINGLE), Llama2cCheckpoint.huggingFaceTensors(header, weights), Map.of("format", "pt"));
                ImportDirectory.writeJson(staging.resolve("config.json"), Llama2cCheckpoint.config(header));
                ImportDirectory.writeJson(staging.resolve("tokenizer.json"), Llama2cTokenizer.tokenizerJson(tokens));
                ImportDirectory.writeJson(staging.resolve("tokenizer_config.json"), Llama2cTokenizer.tokenizerConfig(header.seqLen()));
                ImportDirectory.writeJson(staging.resolve("special_tokens_map.json"), Llama2cTokenizer.specialTokensMap());
            });
            return new Result(outDir, header, !written);
        }
    }

    private static MemorySegment map(Path file, Arena arena) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        } catch (NoSuchFileException e) {
            throw new BrmException(file + ": no such file");
        } catch (IOException e) {
            throw new BrmException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static String sha256(MemorySegment bytes) {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
        long chunk = 1L << 30;
        for (long at = 0; at < bytes.byteSize(); at += chunk)
            digest.update(bytes.asSlice(at, Math.min(chunk, bytes.byteSize() - at)).asByteBuffer());
        return HexFormat.of().formatHex(digest.digest());
    }
}
