package brm.io;

import brm.BrmException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where brm finds models and data, since no model hub is reachable: {@code BRM_DATA} if set, else
 * {@code ../shared/data} beside the brm checkout (the launcher passes its root as {@code brm.home}) or
 * beside the working directory or one of its parents (how brm is developed and how CI runs it), else
 * the user's cache ({@code $XDG_CACHE_HOME/brm/data}, default {@code ~/.cache/brm/data}).
 */
public final class DataFolder {
    private DataFolder() {}

    public static Path root() {
        String env = System.getenv("BRM_DATA");
        if (env != null && !env.isBlank()) return Path.of(env);
        String home = System.getProperty("brm.home");
        if (home != null) {
            Path shared = Path.of(home).toAbsolutePath().resolveSibling("shared").resolve("data");
            if (Files.isDirectory(shared)) return shared;
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir.getParent() != null; dir = dir.getParent()) {
            Path shared = dir.resolveSibling("shared").resolve("data");
            if (Files.isDirectory(shared)) return shared;
        }
        return cache();
    }

    static Path cache() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("brm").resolve("data");
    }

    /**
     * The file {@code item/name} of the data folder; when it is missing the message names the file,
     * the folder searched and where the item originally comes from.
     */
    public static Path require(String item, String name, String origin) {
        Path root = root();
        Path file = root.resolve(item).resolve(name);
        if (Files.exists(file)) return file;
        List<String> hints = new ArrayList<>();
        hints.add("searched " + root + " (set BRM_DATA to another data folder)");
        Path source = root.resolve(item).resolve("SOURCE.txt");
        hints.add(Files.exists(source) ? "see " + source + " for where it comes from" : "it comes from " + origin);
        throw new BrmException("missing data file " + item + "/" + name + ": " + String.join("; ", hints));
    }
}
