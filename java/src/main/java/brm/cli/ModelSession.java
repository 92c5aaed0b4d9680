package brm.cli;

import brm.BrmException;
import brm.batch.LineEncoder;
import brm.batch.Template;
import brm.batch.TextRules;
import brm.backbone.ModelConfig;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;
import org.apache.commons.cli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;

/** What score, tokenize and logits share: the model directory, its config and the text rules. */
record ModelSession(Path modelDir, ModelConfig config, TextRules rules) {
    static ModelSession open(CommandLine line) {
        return open(line, "model");
    }

    /** The model directory named by option {@code option} (brm label's --gold), with the text rules of line. */
    static ModelSession open(CommandLine line, String option) {
        Path dir = Args.path(line, option);
        if (!Files.isDirectory(dir)) throw new BrmException(dir + ": no such model directory");
        ModelConfig config = ModelConfig.read(dir);
        TextRules rules = TextRules.forModel(dir, config, Template.parse(line.getOptionValue("template")), line.hasOption("append-eos"),
                Args.positiveInt(line, "max-length", 0), Args.truncation(line));
        return new ModelSession(dir, config, rules);
    }

    /** The PEFT adapter named by --adapter, matched against this model's linear layers; null without one. */
    LoraAdapter adapter(CommandLine line) {
        Path adir = Args.path(line, "adapter");
        return adir == null ? null : PeftAdapter.load(adir, config);
    }

    LineEncoder encoder(boolean responseRequired) {
        return new LineEncoder(modelDir, rules, config.vocabSize(), responseRequired);
    }
}
