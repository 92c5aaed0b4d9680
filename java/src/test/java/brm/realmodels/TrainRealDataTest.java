package brm.realmodels;

import brm.imports.onnx.LangchainModelsTest;
import brm.imports.onnx.OnnxImporter;
import brm.io.Jsonl;
import brm.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real data, end to end: the trained all-MiniLM-L6-v2 encoder (imported from its ONNX jar) becomes a
 * reward model with LoRA on query/key/value/dense and a fresh head, trained for one epoch on 256 GPT-4-judged
 * AlpacaEval pairs (Alpaca template, the last 64 tokens of each side) and evaluated on 120 other pairs
 * (chance: accuracy 0.5, NLL ln 2 = 0.693); then its Laplace posterior is fitted on the training pairs
 * (factors wider than 512 as rank-32 sketches)
 * and σ must be larger out of domain — TinyStories sentences, random token strings — than on held-out
 * AlpacaEval responses (AUROC > 0.5). Deterministic (seeded, 2 threads); the README quotes the numbers.
 */
class TrainRealDataTest {
    @TempDir
    Path tmp;

    @Test
    void miniLmLearnsGpt4PreferencesAndItsPosteriorFlagsOtherDomains() throws Exception {
        Path model = tmp.resolve("minilm");
        OnnxImporter.importJar(LangchainModelsTest.jarHolding(LangchainModelsTest.Model.MINILM.onnx), model, false);
        List<String> pairs = new ArrayList<>(RealTexts.alpacaEvalPairs());
        assertTrue(pairs.size() > 1500, pairs.size() + " pairs");
        Collections.shuffle(pairs, new Random(0));
        Path train = tmp.resolve("train.jsonl"), eval = tmp.resolve("eval.jsonl"), out = tmp.resolve("adapter");
        Files.write(train, pairs.subList(0, 256));
        Files.write(eval, pairs.subList(256, 376));
        var r = Cli.run("train", "--model", model.toString(), "--data", train.toString(), "--eval-data", eval.toString(), "--out", out.toString(),
                "--template", "alpaca", "--max-length", "64", "--truncate", "left", "--skip-identical", "--epochs", "1", "--batch-size", "16",
                "--lr", "2e-3", "--targets", "query,key,value,dense", "--seed", "1", "--threads", "2");
        assertEquals(0, r.status(), r.err());
        List<String> log = Files.readAllLines(out.resolve(Trainer.LOG));
        JsonNode last = Jsonl.JSON.readTree(log.getLast());
        double accuracy = last.get("eval_accuracy").asDouble(), nll = last.get("eval_nll").asDouble();
        System.out.printf("MiniLM + LoRA on %d AlpacaEval pairs, held out %d: accuracy %.4f, NLL %.4f (chance 0.5, 0.6931)%n",
                256, last.get("eval_pairs").asInt(), accuracy, nll);
        assertTrue(accuracy >= 0.56, "held-out accuracy " + accuracy);
        assertTrue(nll <= Math.log(2) - 0.01, "held-out NLL " + nll);

        var l = Cli.run("laplace", "--model", model.toString(), "--adapter", out.toString(), "--data", train.toString(), "--template", "alpaca",
                "--max-length", "64", "--truncate", "left", "--skip-identical", "--batch-size", "16", "--low-rank", "32", "--low-rank-threshold", "512",
                "--threads", "2");
        assertEquals(0, l.status(), l.err());
        List<String> inDomain = new ArrayList<>(), stories = new ArrayList<>(), random = new ArrayList<>();
        List<String> stor = RealTexts.tinyStorySentences();
        Random draw = new Random(3);
        for (int i = 0; i < 40; i++) {
            JsonNode pair = Jsonl.JSON.readTree(pairs.get(256 + i));
            inDomain.add(Jsonl.JSON.createObjectNode().put("prompt", pair.get("prompt").asText()).put("response", pair.get("chosen").asText()).toString());
            stories.add(Jsonl.JSON.createObjectNode().put("prompt", stor.get(i % stor.size()) + " " + stor.get((i + 1) % stor.size()))
                    .put("response", " " + stor.get((i + 2) % stor.size())).toString());
            random.add("{\"input_ids\": " + Jsonl.JSON.valueToTree(draw.ints(20 + draw.nextInt(40), 1000, 30522).toArray()) + "}");
        }
        double[] in = sigmas(model, out, inDomain, "alpaca"), ts = sigmas(model, out, stories, "none"), rnd = sigmas(model, out, random, "alpaca");
        double aurocStories = auroc(ts, in), aurocRandom = auroc(rnd, in);
        System.out.printf("Laplace σ out of domain vs held-out AlpacaEval: AUROC TinyStories %.3f, random tokens %.3f%n", aurocStories, aurocRandom);
        assertTrue(aurocStories > 0.5, "TinyStories AUROC " + aurocStories);
        assertTrue(aurocRandom > 0.5, "random-token AUROC " + aurocRandom);
    }

    private double[] sigmas(Path model, Path adapter, List<String> lines, String template) throws Exception {
        Path in = Files.createTempFile(tmp, "in", ".jsonl"), scored = Files.createTempFile(tmp, "scored", ".jsonl");
        Files.write(in, lines);
        var s = Cli.run("score", "--model", model.toString(), "--adapter", adapter.toString(), "--input", in.toString(), "--output", scored.toString(),
                "--template", template, "--max-length", "64", "--truncate", "left", "--threads", "2");
        assertEquals(0, s.status(), s.err());
        List<String> out = Files.readAllLines(scored);
        double[] sigma = new double[out.size()];
        for (int i = 0; i < sigma.length; i++) sigma[i] = Jsonl.JSON.readTree(out.get(i)).get("std").asDouble();
        return sigma;
    }

    /** P(σ_out > σ_in) over all pairs, ties ½. */
    static double auroc(double[] out, double[] in) {
        double wins = 0;
        for (double o : out)
            for (double i : in) wins += o > i ? 1 : o == i ? 0.5 : 0;
        return wins / ((double) out.length * in.length);
    }
}
