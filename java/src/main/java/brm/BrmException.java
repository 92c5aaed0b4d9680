package brm;

/**
 * A failure the user can act on: bad input, a missing file, an unsupported option.
 * The message is one line that names the file, line or tensor at fault; the CLI prints it
 * without a stack trace (unless --debug) and exits non-zero.
 */
public final class BrmException extends RuntimeException {
    public BrmException(String message) {
        super(message);
    }

    public BrmException(String message, Throwable cause) {
        super(message, cause);
    }
}
