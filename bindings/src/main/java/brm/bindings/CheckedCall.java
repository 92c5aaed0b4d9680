package brm.bindings;

import java.lang.invoke.MethodHandle;
import java.util.function.IntFunction;

/**
 * A downcall to a C function that returns an int status (0 = success), as every brm kernel entry point
 * does ({@code extern "C" int brm_xxx(...)} returns the CUDA error code). A non-zero status throws a
 * {@link NativeException} naming the function, the code and its description.
 */
public final class CheckedCall {
    private final String function;
    private final MethodHandle handle;
    private final IntFunction<String> describe;

    /** @param describe turns a status code into words (e.g. cudaGetErrorString); may return null */
    public CheckedCall(String function, MethodHandle handle, IntFunction<String> describe) {
        this.function = function;
        this.handle = handle;
        this.describe = describe;
    }

    public String function() {
        return function;
    }

    /** Invokes the function with {@code args}; throws unless it returns 0. */
    public void call(Object... args) {
        run(function, () -> (int) handle.invokeWithArguments(args), describe);
    }

    /** A downcall returning a status, as a lambda so that invokeExact keeps its exact types. */
    @FunctionalInterface
    public interface StatusCall {
        int invoke() throws Throwable;
    }

    /** Runs a downcall and throws unless its status is 0, naming {@code function} (and the status, in words by describe). */
    public static void run(String function, StatusCall call, IntFunction<String> describe) {
        int status;
        try {
            status = call.invoke();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeException(function + ": call failed: " + t);
        }
        check(function, status, describe);
    }

    public static void check(String function, int status, IntFunction<String> describe) {
        if (status == 0) return;
        String words = describe == null ? null : describe.apply(status);
        throw new NativeException(function + " failed with status " + status + (words == null ? "" : " (" + words + ")"));
    }
}
