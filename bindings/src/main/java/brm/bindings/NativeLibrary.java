package brm.bindings;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A native library opened for the lifetime of the process, and the downcall handles bound from it.
 * brm's own libraries (built from native/ and cuda/ by CMake) and optional vendor libraries found at
 * run time (cuBLAS, cuSOLVER) are opened through this class; nothing is linked at build time.
 */
public final class NativeLibrary {
    private static final Linker LINKER = Linker.nativeLinker();

    private final String name;
    private final SymbolLookup lookup;

    private NativeLibrary(String name, SymbolLookup lookup) {
        this.name = name;
        this.lookup = lookup;
    }

    /** Opens the library at {@code path}, or empty when the file does not exist. */
    public static Optional<NativeLibrary> open(Path path) {
        if (!Files.isRegularFile(path)) return Optional.empty();
        return Optional.of(new NativeLibrary(path.toString(), SymbolLookup.libraryLookup(path, Arena.global())));
    }

    /** Opens a library by the name the dynamic loader resolves (e.g. {@code libcublas.so.12}), or empty. */
    public static Optional<NativeLibrary> find(String soname) {
        try {
            return Optional.of(new NativeLibrary(soname, SymbolLookup.libraryLookup(soname, Arena.global())));
        } catch (IllegalArgumentException notFound) {
            return Optional.empty();
        }
    }

    /** The C standard library the JVM already links (for tests of the binding machinery). */
    public static NativeLibrary standardC() {
        return new NativeLibrary("libc", LINKER.defaultLookup());
    }

    public String name() {
        return name;
    }

    /** Binds {@code function} with the given C signature; fails naming the function and library. */
    public MethodHandle downcall(String function, FunctionDescriptor descriptor) {
        MemorySegment symbol = lookup.find(function)
                .orElseThrow(() -> new NativeException(name + ": no symbol " + function));
        return LINKER.downcallHandle(symbol, descriptor);
    }
}
