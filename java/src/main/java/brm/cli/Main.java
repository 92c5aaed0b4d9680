package brm.cli;

import brm.BrmException;
import brm.backend.Backends;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.DefaultParser;
import org.apache.commons.cli.HelpFormatter;
import org.apache.commons.cli.Option;
import org.apache.commons.cli.Options;
import org.apache.commons.cli.ParseException;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Entry point of the brm command line: {@code brm <command> [options]}. Each command has its own
 * option set and --help. Exit status: 0 success, 1 a failure brm explains in one line, 2 bad usage.
 */
public final class Main {
    static final int OK = 0, FAILED = 1, USAGE = 2;

    private Main() {}

    static Map<String, Command> commands() {
        Map<String, Command> map = new LinkedHashMap<>();
        for (Command c : List.of(new ScoreCommand(), new SparkScoreCommand(), new EvalPrefsCommand(), new TrainCommand(), new EnsembleCommand(), new LaplaceCommand(), new GenerateCommand(), new GoldCommand(), new LabelCommand(), new BonCommand(), new EmbedCommand(), new TokenizeCommand(), new LogitsCommand(), new ImportCommand(), new DemoCommand()))
            map.put(c.name(), c);
        return map;
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs one command line; returns the exit status (main exits with it). */
    public static int run(String[] args) {
        Map<String, Command> commands = commands();
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            printOverview(commands);
            return args.length == 0 ? USAGE : OK;
        }
        Command command = commands.get(args[0]);
        if (command == null) {
            System.err.println("brm: unknown command '" + args[0] + "' (commands: " + String.join(", ", commands.keySet()) + ")");
            return USAGE;
        }
        Options options = command.options();
        options.addOption(Option.builder().longOpt("help").desc("show this help").build());
        options.addOption(Option.builder().longOpt("debug").desc("print stack traces on errors").build());
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        boolean debug = Arrays.asList(rest).contains("--debug");
        if (Arrays.asList(rest).contains("--help")) {
            printHelp(command, options);
            return OK;
        }
        CommandLine line;
        try {
            line = new DefaultParser().parse(options, rest);
        } catch (ParseException e) {
            System.err.println("brm " + command.name() + ": " + e.getMessage() + " (see brm " + command.name() + " --help)");
            return USAGE;
        }
        int positionals = command.positional() == null ? 0 : 1;
        if (line.getArgList().size() != positionals) {
            System.err.println("brm " + command.name() + ": " + (line.getArgList().size() > positionals
                    ? "unexpected argument '" + line.getArgList().get(positionals) + "'"
                    : "missing " + command.positional()) + " (see brm " + command.name() + " --help)");
            return USAGE;
        }
        try {
            if (options.hasLongOption("backend")) Backends.select(Args.backend(line));
            command.run(line);
            return OK;
        } catch (UsageException e) {
            System.err.println("brm " + command.name() + ": " + e.getMessage() + " (see brm " + command.name() + " --help)");
            return USAGE;
        } catch (BrmException e) {
            System.err.println("brm " + command.name() + ": " + e.getMessage());
            if (debug) e.printStackTrace();
            return FAILED;
        } catch (OutOfMemoryError e) {
            System.err.println("brm " + command.name() + ": out of memory; lower --batch-size or raise the heap (BRM_JAVA_OPTS=-Xmx...)");
            return FAILED;
        } catch (Exception e) {
            System.err.println("brm " + command.name() + ": internal error: " + e + (debug ? "" : " (rerun with --debug for the stack trace)"));
            if (debug) e.printStackTrace();
            return FAILED;
        }
    }

    private static void printOverview(Map<String, Command> commands) {
        StringBuilder b = new StringBuilder("usage: brm <command> [options]   (brm <command> --help for its options)\n\ncommands:\n");
        commands.values().forEach(c -> b.append(String.format("  %-11s %s%n", c.name(), c.summary())));
        System.out.print(b);
    }

    private static void printHelp(Command command, Options options) {
        HelpFormatter formatter = new HelpFormatter();
        formatter.setWidth(100);
        PrintWriter out = new PrintWriter(System.out, true);
        String usage = "brm " + command.name() + (command.positional() == null ? "" : " " + command.positional()) + " [options]";
        formatter.printHelp(out, 100, usage, command.summary() + "\n\n", options, 2, 2,
                command.details().isEmpty() ? "" : "\n" + command.details());
        out.flush();
    }
}
