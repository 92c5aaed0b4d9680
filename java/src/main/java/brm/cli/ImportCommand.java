package brm.cli;

import brm.imports.llama2c.Llama2cImporter;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;

/** brm import FORMAT: turns trained weights from other formats into Hugging Face model directories. */
final class ImportCommand implements Command {
    @Override
    public String name() {
        return "import";
    }

    @Override
    public String positional() {
        return "llama2c";
    }

    @Override
    public String summary() {
        return "import a llama2.c checkpoint + tokenizer into a Hugging Face Llama directory";
    }

    @Override
    public String details() {
        return """
                brm import llama2c --checkpoint F.bin --tokenizer tok.bin --out DIR
                Idempotent; refuses to replace a different model in DIR without --force; writes atomically.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.value("checkpoint", "F.bin", "llama2.c checkpoint (version-0 export)"));
        o.addOption(Args.value("tokenizer", "tok.bin", "llama2.c tokenizer"));
        o.addOption(Args.required("out", "DIR", "output model directory"));
        o.addOption(Args.flag("force", "replace a different model already in DIR"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        String format = line.getArgList().getFirst();
        Path out = Args.path(line, "out");
        boolean force = line.hasOption("force");
        switch (format) {
            case "llama2c" -> {
                Path checkpoint = requiredPath(line, "checkpoint", format), tokenizer = requiredPath(line, "tokenizer", format);
                var result = Llama2cImporter.importModel(checkpoint, tokenizer, out, force);
                System.err.println((result.unchanged() ? "unchanged: " : "imported: ") + result.dir());
            }
            default -> throw new UsageException("unknown format '" + format + "' (formats: llama2c)");
        }
    }

    private static Path requiredPath(CommandLine line, String option, String format) {
        if (!line.hasOption(option)) throw new UsageException("import " + format + " needs --" + option);
        return Args.path(line, option);
    }
}
