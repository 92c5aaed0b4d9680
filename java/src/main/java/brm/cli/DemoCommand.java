package brm.cli;

import brm.BrmException;
import brm.imports.llama2c.Llama2cImporter;
import brm.io.AtomicFiles;
import brm.io.DataFolder;
import brm.io.Jsonl;
import brm.reward.CausalLM;
import brm.tokenize.Tokenizer;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * brm demo: the embedded default job, on real trained weights found in the data folder.
 * Today: import the TinyStories model stories260K (llama2.c) into a Hugging Face directory, let it
 * continue a story greedily (proof that the imported weights and the Llama forward are right), build
 * an example JSONL from the TinyStories sample (each story's opening with its true continuation and
 * with a word-shuffled one) and score it with brm score, the reward head freshly drawn from a seed.
 * It becomes the best-of-n over-optimisation experiment when training and Laplace land.
 */
final class DemoCommand implements Command {
    @Override
    public String name() {
        return "demo";
    }

    @Override
    public String summary() {
        return "run the embedded default job on real weights from the data folder (stories260K)";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.value("out", "DIR", "where the imported model, the example file and the scores go (default brm-demo)"));
        o.addOption(Args.value("threads", "N", "compute threads (default: all cores)"));
        return o;
    }

    @Override
    public void run(CommandLine line) throws IOException {
        Path out = Path.of(line.getOptionValue("out", "brm-demo"));
        int threads = Args.threads(line);
        Path checkpoint = DataFolder.require("stories260K", "stories260K.bin", "huggingface.co/karpathy/tinyllamas (stories260K)");
        Path tokenizerBin = DataFolder.require("stories260K", "tok512.bin", "huggingface.co/karpathy/tinyllamas (stories260K)");
        Path stories = DataFolder.require("tinystories-sample", "tinystories_sample.txt", "the TinyStories data set (roneneldan/TinyStories)");

        Path model = out.resolve("stories260K");
        var imported = Llama2cImporter.importModel(checkpoint, tokenizerBin, model, false);
        System.out.println("1. model: " + model + (imported.unchanged() ? " (already imported)" : " (imported from " + checkpoint + ")"));

        Tokenizer tokenizer = Tokenizer.load(model.resolve("tokenizer.json"));
        try (CausalLM lm = CausalLM.open(model, null, threads)) {
            int[] ids = tokenizer.encode("", true);
            for (int step = 0; step < 40; step++) {
                float[] logits = lm.lastLogits(ids);
                int next = 0;
                for (int v = 1; v < logits.length; v++) if (logits[v] > logits[next]) next = v;
                ids = Arrays.copyOf(ids, ids.length + 1);
                ids[ids.length - 1] = next;
            }
            System.out.println("2. greedy story from <s>: \"" + tokenizer.decode(ids, true).strip().replace("\n", " ") + "\"");
        }

        Path examples = out.resolve("examples.jsonl"), scores = out.resolve("scores.jsonl");
        int lines = writeExamples(Files.readString(stories, StandardCharsets.UTF_8), examples);
        System.out.println("3. example file: " + examples + " (" + lines + " lines: story openings with their true and a word-shuffled continuation)");
        int status = Main.run(new String[] {"score", "--model", model.toString(), "--input", examples.toString(), "--output",
                scores.toString(), "--init-head", "0", "--threads", Integer.toString(threads)});
        if (status != Main.OK) throw new BrmException("demo: scoring failed (see above)");
        double[] sum = new double[2];
        int[] count = new int[2];
        for (Jsonl.Line l : Jsonl.read(scores)) {
            int kind = l.value().get("id").asText().endsWith("-true") ? 0 : 1;
            sum[kind] += l.value().get("reward").asDouble();
            count[kind]++;
        }
        System.out.printf("4. scores: %s: mean reward %.4f for true continuations, %.4f for shuffled ones%n"
                + "   (the reward head is drawn from seed 0, so these rewards are not yet meaningful: brm train makes them so)%n",
                scores, sum[0] / count[0], sum[1] / count[1]);
    }

    /** Two lines per story: opening + true continuation, opening + the same words shuffled. */
    static int writeExamples(String text, Path file) {
        List<ObjectNode> lines = new ArrayList<>();
        Random random = new Random(0);
        int n = 0;
        for (String story : text.split("<\\|endoftext\\|>")) {
            String s = story.strip().replaceAll("\\s+", " ");
            int cut = s.indexOf(". ");
            if (cut < 0) continue;
            String opening = s.substring(0, cut + 1), rest = s.substring(cut + 1);
            String continuation = rest.length() > 400 ? rest.substring(0, rest.lastIndexOf(' ', 400)) : rest;
            List<String> words = new ArrayList<>(Arrays.asList(continuation.strip().split(" ")));
            Collections.shuffle(words, random);
            n++;
            lines.add(line("story-" + n + "-true", opening, continuation));
            lines.add(line("story-" + n + "-shuffled", opening, " " + String.join(" ", words)));
        }
        AtomicFiles.write(file, o -> {
            for (ObjectNode l : lines) Jsonl.writeLine(o, l);
        });
        return lines.size();
    }

    private static ObjectNode line(String id, String prompt, String response) {
        ObjectNode o = Jsonl.JSON.createObjectNode();
        o.put("id", id);
        o.put("prompt", prompt);
        o.put("response", response);
        return o;
    }
}
