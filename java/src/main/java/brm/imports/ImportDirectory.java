package brm.imports;

import brm.BrmException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The output directory of an importer. An import is identified by a SHA-256 of its inputs, recorded in
 * {@code brm_import.json} with what the importer wants to say about them:
 * - the same inputs into a complete import of them: nothing is written (idempotent);
 * - a directory holding anything else (another import, other files): refused unless forced;
 * - otherwise the files are written into a hidden staging directory beside the target and renamed into
 *   place; an existing target is moved aside first and put back if the swap fails, so the directory is
 *   never seen half-written.
 */
public final class ImportDirectory {
    public static final String RECORD = "brm_import.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private ImportDirectory() {}

    /** Writes an import's files (everything but the record) into the staging directory. */
    @FunctionalInterface
    public interface Contents {
        void write(Path staging) throws IOException;
    }

    /**
     * Imports into {@code outDir}; returns false when it already holds this import.
     *
     * @param sha256 the identity of the inputs (and of the importer's format version)
     * @param record what brm_import.json says besides the hash
     * @param files  the files a complete import has, the record included
     */
    public static boolean install(Path outDir, String sha256, ObjectNode record, List<String> files, boolean force, Contents contents) {
        Path dir = outDir.toAbsolutePath().normalize();
        if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.isDirectory(dir)) throw new BrmException(dir + ": exists and is not a directory");
            JsonNode existing = existingRecord(dir);
            boolean same = existing != null && sha256.equals(existing.path("sha256").asText());
            if (!force && same && files.stream().allMatch(f -> Files.isRegularFile(dir.resolve(f)))) return false;
            if (!force && !isEmpty(dir))
                throw new BrmException(dir + ": " + (existing == null ? "not empty and not a brm import"
                        : same ? "holds an incomplete import of the same inputs" : "holds a different import (sha256 "
                        + existing.path("sha256").asText() + ")") + "; pass --force to replace it");
        }
        Path staging = null;
        try {
            Files.createDirectories(dir.getParent());
            staging = Files.createTempDirectory(dir.getParent(), "." + dir.getFileName() + ".import-");
            contents.write(staging);
            writeJson(staging.resolve(RECORD), JSON.createObjectNode().put("sha256", sha256).setAll(record));
            swap(dir, staging);
            staging = null;
        } catch (IOException e) {
            throw new BrmException(dir + ": cannot write the import: " + e.getMessage(), e);
        } finally {
            if (staging != null) deleteTree(staging);
        }
        return true;
    }

    /** The whole file, or a one-line error naming it. */
    public static byte[] read(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new BrmException(file + ": no such file");
        } catch (IOException e) {
            throw new BrmException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** Pretty-printed JSON, as Hugging Face writes its config files. */
    public static void writeJson(Path file, JsonNode node) throws IOException {
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node) + "\n");
    }

    private static JsonNode existingRecord(Path dir) {
        Path file = dir.resolve(RECORD);
        if (!Files.isRegularFile(file)) return null;
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            return null;
        }
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            throw new BrmException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    /** Renames the finished staging directory to dir; an existing dir is moved aside first and put back if the swap fails. */
    private static void swap(Path dir, Path staging) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
            return;
        }
        Path old = Files.createTempDirectory(dir.getParent(), "." + dir.getFileName() + ".old-");
        Files.delete(old);
        Files.move(dir, old, StandardCopyOption.ATOMIC_MOVE);
        try {
            Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            Files.move(old, dir, StandardCopyOption.ATOMIC_MOVE);
            throw e;
        }
        deleteTree(old);
    }

    /** Best effort: a leftover is clutter beside the result, never a wrong result. */
    private static void deleteTree(Path root) {
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException | UncheckedIOException ignored) {
            // the import's own outcome is what the user needs to see
        }
    }
}
