package brm.cli;

/** A missing or malformed option: reported with a pointer to --help, exit status 2. */
final class UsageException extends RuntimeException {
    UsageException(String message) {
        super(message);
    }
}
