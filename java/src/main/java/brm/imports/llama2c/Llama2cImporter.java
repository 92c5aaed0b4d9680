package brm.imports.llama2c;

import brm.BrmException;
import brm.imports.llama2c.Llama2cCheckpoint.Header;
import brm.imports.llama2c.Llama2cTokenizer.Token;
import brm.io.ModelWeights;
import brm.io.SafetensorsWriter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * {@code brm import llama2c}: a llama2.c checkpoint and tokenizer become a Hugging Face Llama directory:
 * model.safetensors and config.json ({@link Llama2cCheckpoint}), tokenizer.json, tokenizer_config.json
 * and special_tokens_map.json ({@link Llama2cTokenizer}), and brm_import.json, which records the
 * SHA-256 of both inputs.
 *
 * The directory appears whole or not at all: it is built in a hidden sibling, then renamed into place
 * (replacing a directory takes two renames, so it is briefly absent, never partial). Importing the same
 * inputs again leaves it untouched; a directory holding anything else is replaced only with force, which
 * also rewrites an identical import.
 */
public final class Llama2cImporter {
    public static final String RECORD = "brm_import.json";
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
            byte[] tokenizerBytes = readAll(tokenizer);
            List<Token> tokens = Llama2cTokenizer.read(tokenizer, tokenizerBytes, header.vocabSize());
            ObjectNode record = JSON.createObjectNode();
            record.put("importer", "brm import llama2c");
            record.put("format", FORMAT);
            record.putObject("checkpoint").put("file", checkpoint.getFileName().toString()).put("sha256", sha256(weights));
            record.putObject("tokenizer").put("file", tokenizer.getFileName().toString())
                    .put("sha256", sha256(MemorySegment.ofArray(tokenizerBytes)));

            if (Files.exists(outDir, LinkOption.NOFOLLOW_LINKS)) {
                if (!Files.isDirectory(outDir)) throw new BrmException(outDir + ": exists and is not a directory");
                JsonNode existing = existingRecord(outDir);
                if (!force && existing != null && sameInputs(existing, record) && complete(outDir)) return new Result(outDir, header, true);
                if (!force && !isEmpty(outDir))
                    throw new BrmException(outDir + ": " + (existing == null ? "not empty and not a brm import"
                            : "holds a different or incomplete import (of " + existing.path("checkpoint").path("file").asText()
                              + " and " + existing.path("tokenizer").path("file").asText() + ")") + "; force (--force) replaces it");
            }

            Path target = outDir.toAbsolutePath().normalize();
            Path staging = sibling(target, "new");
            try {
                Files.createDirectories(target.getParent());
                Files.createDirectory(staging);
                SafetensorsWriter.write(staging.resolve(ModelWeights.SINGLE), Llama2cCheckpoint.huggingFaceTensors(header, weights), Map.of("format", "pt"));
                writeJson(staging.resolve("config.json"), Llama2cCheckpoint.config(header));
                writeJson(staging.resolve("tokenizer.json"), Llama2cTokenizer.tokenizerJson(tokens));
                writeJson(staging.resolve("tokenizer_config.json"), Llama2cTokenizer.tokenizerConfig(header.seqLen()));
                writeJson(staging.resolve("special_tokens_map.json"), Llama2cTokenizer.specialTokensMap());
                writeJson(staging.resolve(RECORD), record);
                install(staging, target);
            } catch (IOException e) {
                throw new BrmException(outDir + ": cannot write: " + e.getMessage(), e);
            } finally {
                deleteTree(staging);
            }
            return new Result(outDir, header, false);
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

    private static byte[] readAll(Path file) {
        try {
            return Files.readAllBytes(file);
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

    /** The record in {@code dir}, or null when there is none or it is not JSON. */
    private static JsonNode existingRecord(Path dir) {
        try {
            Path file = dir.resolve(RECORD);
            return Files.isRegularFile(file) ? JSON.readTree(file.toFile()) : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static boolean sameInputs(JsonNode a, JsonNode b) {
        return a.path("format").equals(b.path("format"))
                && a.path("checkpoint").path("sha256").equals(b.path("checkpoint").path("sha256"))
                && a.path("tokenizer").path("sha256").equals(b.path("tokenizer").path("sha256"));
    }

    private static boolean complete(Path dir) {
        return OUTPUTS.stream().allMatch(name -> Files.isRegularFile(dir.resolve(name)));
    }

    private static boolean isEmpty(Path dir) {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            return !entries.iterator().hasNext();
        } catch (IOException e) {
            throw new BrmException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        Files.write(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node));
    }

    /** A fresh hidden name beside {@code target}, for a directory being built or replaced. */
    private static Path sibling(Path target, String role) {
        return target.resolveSibling("." + target.getFileName() + "." + role + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    /** Renames {@code staging} to {@code target}; an existing target is moved aside first, then deleted. */
    private static void install(Path staging, Path target) throws IOException {
        if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
            Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            return;
        }
        Path old = sibling(target, "old");
        Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        try {
            Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);
            throw e;
        }
        deleteTree(old);
    }

    /** Deletes {@code root} and everything under it, if it exists; links are removed, not followed. */
    private static void deleteTree(Path root) {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) return;
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
                    if (e != null) throw e;
                    Files.delete(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new BrmException(root + ": cannot delete: " + e.getMessage(), e);
        }
    }
}
