package brm.bindings;

/** A native call failed; the message names the C function and its error code. */
public final class NativeException extends RuntimeException {
    public NativeException(String message) {
        super(message);
    }
}
