package brm.io;

import brm.BrmException;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Outputs appear whole or not at all: write a temporary sibling, then rename over the target (over
 * the file a symbolic link points to, keeping the link). Streams are written directly, appended
 * without truncation as a shell redirection does: "-" (standard output), device paths such as
 * /dev/stdout and /dev/fd/N, and an existing target that is not a regular file (a named pipe).
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    @FunctionalInterface
    public interface Body {
        void write(OutputStream out) throws IOException;
    }

    public static void write(Path target, Body body) {
        Path given = target.toAbsolutePath().normalize();
        if (target.toString().equals("-") || given.startsWith("/dev") || given.startsWith("/proc")
                || (Files.exists(target) && !Files.isRegularFile(target))) {
            writeStream(target, body);
            return;
        }
        Path absolute;
        try {
            absolute = Files.isSymbolicLink(target) && Files.exists(target) ? target.toRealPath() : given;
        } catch (IOException e) {
            throw new BrmException(target + ": cannot resolve: " + e.getMessage(), e);
        }
        Path dir = absolute.getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + absolute.getFileName() + ".", ".tmp");
            // temporary files are created owner-only; an output is an ordinary, world-readable file
            if (Files.getFileStore(tmp).supportsFileAttributeView("posix"))
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
            try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
                body.write(out);
            }
            try {
                Files.move(tmp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new BrmException(target + ": cannot write: " + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the original failure is what the user needs to see
                }
            }
        }
    }

    private static void writeStream(Path target, Body body) {
        boolean stdout = target.toString().equals("-");
        try (OutputStream out = new BufferedOutputStream(stdout ? new FileOutputStream(FileDescriptor.out)
                : Files.newOutputStream(target, StandardOpenOption.WRITE, StandardOpenOption.APPEND), 1 << 16)) {
            body.write(out);
        } catch (IOException e) {
            throw new BrmException((stdout ? "standard output" : target.toString()) + ": cannot write: " + e.getMessage(), e);
        }
    }
}
