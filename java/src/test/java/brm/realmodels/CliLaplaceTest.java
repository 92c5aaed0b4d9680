package brm.realmodels;

import brm.io.Jsonl;
import brm.laplace.Posterior;
import brm.reward.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm train → brm laplace → brm score / eval-prefs on a tiny GPT-NeoX: the posterior is written beside
 * the adapter, scores gain var/std/penalized, k = 0 reproduces the MAP ranking, pair scoring gives the
 * probit probability with the covariance, and mismatched or bad posteriors are refused by name.
 */
class CliLaplaceTest {
    @TempDir
    Path tmp;

    private static final String MODEL = Fixtures.dir("gpt_neox_parallel").toString();

    /** An adapter saved by PEFT's conventions elsewhere (make_fixtures.py's PyTorch reference) gets a posterior too. */
    @Test
    void laplaceOnAPeftFormatAdapter() throws IOException {
        Path fixture = Fixtures.dir("llama_gqa_train"), adapter = tmp.resolve("peft");
        Files.createDirectories(adapter);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors")) Files.copy(fixture.resolve("adapter").resolve(f), adapter.resolve(f));
        var l = Cli.run("laplace", "--model", fixture.toString(), "--adapter", adapter.toString(), "--data", fixture.resolve("pairs.jsonl").toString(),
                "--include-head", "--prior-structure", "layer", "--tokens", "expand", "--threads", "1");
        assertEquals(0, l.status(), l.err());
        Path scored = tmp.resolve("scored.jsonl");
        var s = Cli.run("score", "--model", fixture.toString(), "--adapter", adapter.toString(), "--input", fixture.resolve("pairs.jsonl").toString(),
                "--output", scored.toString(), "--pairs");
        assertEquals(0, s.status(), s.err());
        for (String line : Files.readAllLines(scored)) assertTrue(Jsonl.JSON.readTree(line).get("margin_var").asDouble() > 0, line);
    }

    /** brm ensemble train → laplace per member → score --ensemble → bon over the ensemble rankers. */
    @Test
    void ensembleOfSeeds() throws IOException {
        Path data = tmp.resolve("train.jsonl"), dir = tmp.resolve("ensemble");
        Files.write(data, CliTrainTest.pairLines(24, 4));
        var t = Cli.run("ensemble", "train", "--seeds", "3,5", "--model", MODEL, "--data", data.toString(), "--out", dir.toString(),
                "--epochs", "1", "--lr", "1e-2", "--threads", "1");
        assertEquals(0, t.status(), t.err());
        for (String member : List.of("seed-3", "seed-5"))
            assertEquals(0, Cli.run("laplace", "--model", MODEL, "--adapter", dir.resolve(member).toString(), "--data", data.toString(), "--threads", "1").status());
        Random random = new Random(6);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 8; i++)
            lines.add("{\"prompt_id\": " + (i % 2) + ", \"sample_id\": " + i + ", \"gold\": " + random.nextGaussian() + ", \"input_ids\": "
                    + Jsonl.JSON.valueToTree(random.ints(3 + random.nextInt(5), 0, 96).toArray()) + "}");
        Path in = tmp.resolve("in.jsonl"), out = tmp.resolve("ens.jsonl"), single = tmp.resolve("single.jsonl");
        Files.write(in, lines);
        var s = Cli.run("score", "--model", MODEL, "--ensemble", dir.toString(), "--input", in.toString(), "--output", out.toString(),
                "--keep-fields", "prompt_id,sample_id,gold");
        assertEquals(0, s.status(), s.err());
        assertEquals(0, Cli.run("score", "--model", MODEL, "--adapter", dir.resolve("seed-5").toString(), "--input", in.toString(),
                "--output", single.toString()).status());
        List<String> ens = Files.readAllLines(out), one = Files.readAllLines(single);
        for (int i = 0; i < ens.size(); i++) {
            JsonNode e = Jsonl.JSON.readTree(ens.get(i)), o = Jsonl.JSON.readTree(one.get(i));
            assertEquals(2, e.get("rewards").size());
            assertEquals(o.get("reward").asDouble(), e.get("rewards").get(1).asDouble(), 1e-6, "member 2 is seed-5");
            assertEquals(o.get("var").asDouble(), e.get("vars").get(1).asDouble(), 1e-9 * o.get("var").asDouble());
            assertEquals((e.get("rewards").get(0).asDouble() + e.get("rewards").get(1).asDouble()) / 2, e.get("reward").asDouble(), 1e-9);
        }
        var bon = Cli.run("bon", "--input", out.toString(), "--n-grid", "1,2,4", "--rankers", "map,mean,wco,uwo:1,la-std:1,la-var:1,oracle",
                "--output", tmp.resolve("curves.csv").toString());
        assertEquals(0, bon.status(), bon.err());
        assertEquals(1 + 7 * 3, Files.readAllLines(tmp.resolve("curves.csv")).size());
    }

    @Test
    void laplaceThenScoreWithUncertainty() throws IOException {
        Path data = tmp.resolve("train.jsonl"), adapter = tmp.resolve("adapter");
        Files.write(data, CliTrainTest.pairLines(32, 1));
        assertEquals(0, Cli.run("train", "--model", MODEL, "--data", data.toString(), "--out", adapter.toString(), "--epochs", "2",
                "--lr", "1e-2", "--threads", "1").status());
        var l = Cli.run("laplace", "--model", MODEL, "--adapter", adapter.toString(), "--data", data.toString(), "--threads", "1");
        assertEquals(0, l.status(), l.err());
        assertTrue(Files.exists(adapter.resolve(Posterior.FILE)));

        Random random = new Random(2);
        List<String> inputs = new ArrayList<>();
        for (int i = 0; i < 12; i++) inputs.add("{\"input_ids\": " + Jsonl.JSON.valueToTree(random.ints(2 + random.nextInt(8), 0, 96).toArray()) + "}");
        Path in = tmp.resolve("in.jsonl"), plain = tmp.resolve("plain.jsonl"), uncertain = tmp.resolve("uncertain.jsonl");
        Files.write(in, inputs);
        assertEquals(0, Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", in.toString(), "--output", plain.toString(),
                "--no-uncertainty").status());
        var s = Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", in.toString(), "--output", uncertain.toString(),
                "--k", "0", "--batch-size", "5");
        assertEquals(0, s.status(), s.err());
        List<String> a = Files.readAllLines(plain), b = Files.readAllLines(uncertain);
        for (int i = 0; i < a.size(); i++) {
            JsonNode p = Jsonl.JSON.readTree(a.get(i)), u = Jsonl.JSON.readTree(b.get(i));
            assertFalse(p.has("var"));
            double mu = u.get("reward").asDouble(), var = u.get("var").asDouble();
            assertEquals(p.get("reward").asDouble(), mu, 1e-5 * Math.max(1, Math.abs(mu)), "μ is the MAP reward");
            assertTrue(var > 0 && Math.abs(u.get("std").asDouble() - Math.sqrt(var)) < 1e-12);
            assertEquals((float) mu, (float) u.get("penalized").asDouble(), "k = 0 leaves the MAP reward, hence its ranking");
        }
        Path k2 = tmp.resolve("k2.jsonl");
        assertEquals(0, Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", in.toString(), "--output", k2.toString(),
                "--k", "2", "--penalty", "var").status());
        JsonNode first = Jsonl.JSON.readTree(Files.readAllLines(k2).getFirst());
        assertEquals(first.get("reward").asDouble() - 2 * first.get("var").asDouble(), first.get("penalized").asDouble(), 1e-6 * Math.abs(first.get("penalized").asDouble()));

        Path pairs = tmp.resolve("pairs.jsonl"), scoredPairs = tmp.resolve("scored-pairs.jsonl");
        Files.write(pairs, CliTrainTest.pairLines(6, 3));
        assertEquals(0, Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", pairs.toString(), "--output",
                scoredPairs.toString(), "--pairs").status());
        for (String line : Files.readAllLines(scoredPairs)) {
            JsonNode o = Jsonl.JSON.readTree(line);
            double margin = o.get("margin").asDouble(), var = o.get("margin_var").asDouble();
            assertEquals(o.get("reward_chosen").asDouble() - o.get("reward_rejected").asDouble(), margin, 1e-6);
            assertTrue(var >= 0, line);
            double z = margin / Math.sqrt(1 + Math.PI * var / 8);
            assertEquals(1 / (1 + Math.exp(-z)), o.get("p_chosen").asDouble(), 1e-12);
        }

        // pools: σ relative to each prompt's mean reward, fields carried for brm bon
        List<String> pooled = new ArrayList<>();
        for (int i = 0; i < 12; i++)
            pooled.add("{\"prompt_id\": \"p" + (i % 3) + "\", \"sample_id\": " + i + ", \"gold\": " + (i * 0.5) + ", \"input_ids\": "
                    + Jsonl.JSON.valueToTree(random.ints(2 + random.nextInt(8), 0, 96).toArray()) + "}");
        Path poolIn = tmp.resolve("pool.jsonl"), poolOut = tmp.resolve("pool-scored.jsonl");
        Files.write(poolIn, pooled);
        var rel = Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", poolIn.toString(), "--output", poolOut.toString(),
                "--relative-by", "prompt_id", "--keep-fields", "sample_id,gold", "--k", "1", "--penalty", "std_rel", "--batch-size", "5");
        assertEquals(0, rel.status(), rel.err());
        for (String line : Files.readAllLines(poolOut)) {
            JsonNode o = Jsonl.JSON.readTree(line);
            assertTrue(o.has("prompt_id") && o.has("sample_id") && o.has("gold"), line);
            assertTrue(o.get("var_rel").asDouble() > 0, line);
            assertEquals(o.get("reward").asDouble() - o.get("std_rel").asDouble(), o.get("penalized").asDouble(), 1e-6);
        }
        Path bonOut = tmp.resolve("curves.csv");
        var bon = Cli.run("bon", "--input", poolOut.toString(), "--n-grid", "1,2,4", "--rankers", "map,std:1,oracle", "--output", bonOut.toString());
        assertEquals(0, bon.status(), bon.err());
        Path withFeatures = tmp.resolve("features.jsonl"), plainFeatures = tmp.resolve("plain-features.jsonl");
        assertEquals(0, Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", poolIn.toString(), "--output",
                withFeatures.toString(), "--features", "--keep-fields", "prompt_id,sample_id,gold").status());
        assertEquals(0, Cli.run("score", "--model", MODEL, "--adapter", adapter.toString(), "--input", poolIn.toString(), "--output",
                plainFeatures.toString(), "--features", "--no-uncertainty").status());
        List<String> fa = Files.readAllLines(withFeatures), fb = Files.readAllLines(plainFeatures);
        for (int i = 0; i < fa.size(); i++) {
            JsonNode x = Jsonl.JSON.readTree(fa.get(i)).get("features"), y = Jsonl.JSON.readTree(fb.get(i)).get("features");
            assertEquals(32, x.size());
            for (int j = 0; j < x.size(); j++) assertEquals(y.get(j).asDouble(), x.get(j).asDouble(), 1e-5 * Math.max(1, Math.abs(y.get(j).asDouble())));
        }
        assertEquals(0, Cli.run("bon", "--input", withFeatures.toString(), "--n-grid", "1,2", "--rankers", "map,typicality,std:1",
                "--output", tmp.resolve("typ.csv").toString()).status());
        var noPosterior = Cli.run("score", "--model", MODEL, "--input", poolIn.toString(), "--output", tmp.resolve("y").toString(), "--relative-by", "prompt_id");
        assertEquals(2, noPosterior.status());

        // the posterior belongs to these adapter weights: a changed adapter is refused by name
        Path other = tmp.resolve("other");
        assertEquals(0, Cli.run("train", "--model", MODEL, "--data", data.toString(), "--out", other.toString(), "--epochs", "1",
                "--seed", "7", "--threads", "1").status());
        Files.copy(adapter.resolve(Posterior.FILE), other.resolve(Posterior.FILE));
        var refused = Cli.run("score", "--model", MODEL, "--adapter", other.toString(), "--input", in.toString(), "--output", tmp.resolve("x").toString());
        assertEquals(1, refused.status());
        assertTrue(refused.err().contains("was fitted to other adapter weights"), refused.err());
        assertFalse(Files.exists(tmp.resolve("x")));
        var badPrior = Cli.run("laplace", "--model", MODEL, "--adapter", adapter.toString(), "--data", data.toString(), "--prior", "-1");
        assertEquals(2, badPrior.status());
        assertTrue(badPrior.err().contains("--prior must be a number > 0.0"), badPrior.err());
        Path empty = tmp.resolve("empty.jsonl");
        Files.writeString(empty, "\n");
        var noPairs = Cli.run("laplace", "--model", MODEL, "--adapter", adapter.toString(), "--data", empty.toString());
        assertEquals(1, noPairs.status());
        assertTrue(noPairs.err().contains("no usable preference pairs"), noPairs.err());
    }
}
