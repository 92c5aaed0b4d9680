package brm.cli;

import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

/** One subcommand: its name, a one-line summary, its own option set, and what it does. */
interface Command {
    String name();

    String summary();

    /** Extra usage text printed after the options by --help (may be empty). */
    default String details() {
        return "";
    }

    Options options();

    /** The name of the one positional argument the command takes (e.g. a format), or null for none. */
    default String positional() {
        return null;
    }

    void run(CommandLine line) throws Exception;
}
