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
 * Real-data smoke test of brm train: the trained all-MiniLM-L6-v2 encoder (imported from its ONNX jar)
 * becomes a reward model with LoRA on query/key/value/dense and a fresh head, trained for one epoch on
 * 256 GPT-4-judged AlpacaEval pairs (Alpaca template, the last 64 tokens of each side), and evaluated
 * on 120 other pairs. Chance is accuracy 0.5 and NLL ln 2 = 0.693; the run is deterministic (seeded,
 * 2 threads), and the README quotes its result.
 */
class TrainRealDataTest {
    @TempDir
    Path tmp;

    @Test
    void miniLmLearnsGpt4PreferencesBeyondChance() throws Exception {
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
    }
}
