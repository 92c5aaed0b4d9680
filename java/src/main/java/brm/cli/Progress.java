package brm.cli;

import java.io.PrintStream;

/**
 * Progress on stderr for long jobs: one line rewritten in place on a terminal, a plain line every
 * ten seconds otherwise (logs, CI). Silent for jobs that finish within the first two seconds.
 */
final class Progress {
    private static final long QUIET_NANOS = 2_000_000_000L, PLAIN_EVERY_NANOS = 10_000_000_000L, TTY_EVERY_NANOS = 200_000_000L;

    private final String what, unit;
    private final PrintStream err = System.err;
    private final boolean terminal = System.console() != null && System.console().isTerminal();
    private final long start = System.nanoTime();
    private long lastPrint = start;
    private boolean printed;

    Progress(String what) {
        this(what, "lines");
    }

    /** @param unit what {@code done} counts ("lines", "pairs") */
    Progress(String what, String unit) {
        this.what = what;
        this.unit = unit;
    }

    void update(long done, long tokens) {
        long now = System.nanoTime();
        if (now - start < QUIET_NANOS || now - lastPrint < (terminal ? TTY_EVERY_NANOS : PLAIN_EVERY_NANOS)) return;
        lastPrint = now;
        printed = true;
        String line = line(done, tokens, now);
        if (terminal) err.print("\r" + line + "\u001b[K");
        else err.println(line);
    }

    void finish(long done, long tokens) {
        if (!printed) return;
        String line = line(done, tokens, System.nanoTime());
        if (terminal) err.println("\r" + line + "\u001b[K");
        else err.println(line);
    }

    private String line(long done, long tokens, long now) {
        double seconds = Math.max(1e-9, (now - start) / 1e9);
        return String.format("%s: %d %s, %.0f tokens/s, %.0fs", what, done, unit, tokens / seconds, seconds);
    }
}
