package brm.bindings;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckedCallTest {
    @Test
    void bindsAndCallsAC_function() throws Throwable {
        // int abs(int): a status-returning shape like brm's kernels; abs(x) == 0 only for x == 0
        var abs = NativeLibrary.standardC().downcall("abs", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        int x = new Random().nextInt(1, 1000);
        assertEquals(x, (int) abs.invokeExact(-x));
        new CheckedCall("abs", abs, null).call(0);
        var error = assertThrows(NativeException.class, () -> new CheckedCall("abs", abs, code -> "code " + code).call(-x));
        assertTrue(error.getMessage().startsWith("abs failed with status " + x), error.getMessage());
    }

    @Test
    void passesNativeMemory() throws Throwable {
        var strlen = NativeLibrary.standardC().downcall("strlen", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            String s = "x".repeat(new Random().nextInt(1, 64));
            assertEquals(s.length(), (long) strlen.invokeExact(arena.allocateFrom(s)));
        }
    }

    @Test
    void missingSymbolsAndLibrariesAreNamed() {
        var e = assertThrows(NativeException.class,
                () -> NativeLibrary.standardC().downcall("brm_no_such_function", FunctionDescriptor.ofVoid()));
        assertTrue(e.getMessage().contains("brm_no_such_function"));
        assertTrue(NativeLibrary.open(Path.of("/nonexistent/libbrm_cuda.so")).isEmpty());
        assertTrue(NativeLibrary.find("libbrm_definitely_missing.so.9").isEmpty());
    }
}
