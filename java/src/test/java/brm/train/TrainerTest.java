package brm.train;

import brm.batch.PreferencePairs.Pair;
import brm.io.Jsonl;
import brm.lora.PeftAdapter;
import brm.reward.Fixtures;
import brm.reward.RewardModel;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training on a tiny GPT-NeoX: pairs whose chosen side ends in one token and rejected side in
 * another (separable through the last token the head pools) are learnt; runs are bit-identical;
 * an interrupted run resumed from its checkpoint ends bit-identical to an uninterrupted one; the
 * written adapter is read back by the scoring path.
 */
class TrainerTest {
    private static final Path MODEL = Fixtures.dir("gpt_neox_parallel");

    @TempDir
    Path tmp;

    static List<Pair> pairs(int n, long seed) {
        Random random = new Random(seed);
        List<Pair> pairs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] chosen = new int[3 + random.nextInt(8)], rejected = new int[3 + random.nextInt(8)];
            for (int t = 0; t < chosen.length; t++) chosen[t] = 10 + random.nextInt(80);
            for (int t = 0; t < rejected.length; t++) rejected[t] = 10 + random.nextInt(80);
            chosen[chosen.length - 1] = 5;
            rejected[rejected.length - 1] = 9;
            pairs.add(new Pair(i + 1, chosen, rejected, 0f));
        }
        return pairs;
    }

    static Trainer.Options options(int epochs, long saveEvery, int threads) {
        return new Trainer.Options(new LoraSpec(4, 8, 0, List.of("query_key_value", "dense")), 2e-2,
                new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01), Schedule.Kind.LINEAR, 2, 1.0, 8, 1, epochs, 0, 11, false,
                new BradleyTerry(0.01, 0), 0, saveEvery, threads);
    }

    private static final Trainer.Listener QUIET = new Trainer.Listener() {
        @Override
        public void start(long first, long totalSteps) {}

        @Override
        public void step(long step, long totalSteps, long pairs, long tokens) {}

        @Override
        public void report(ObjectNode line) {}
    };

    private static List<ObjectNode> log(Path dir) {
        List<ObjectNode> lines = new ArrayList<>();
        try (Jsonl.Reader r = Jsonl.Reader.open(dir.resolve(Trainer.LOG))) {
            for (Jsonl.Line l = r.next(); l != null; l = r.next()) lines.add(l.value());
        }
        return lines;
    }

    @Test
    void learnsSeparablePairsDeterministically() throws IOException {
        List<Pair> train = pairs(64, 1), eval = pairs(24, 2);
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        new Trainer(MODEL, train, eval, "pairs", a, options(6, 0, 2), QUIET).run(false);
        new Trainer(MODEL, train, eval, "pairs", b, options(6, 0, 2), QUIET).run(false);
        List<ObjectNode> log = log(a);
        assertEquals(6, log.size(), "one report per epoch");
        double first = log.getFirst().get("loss").asDouble(), last = log.getLast().get("loss").asDouble();
        assertTrue(last < 0.5 * first, "training loss fell from " + first + " to " + last);
        double accuracy = log.getLast().get("eval_accuracy").asDouble();
        assertTrue(accuracy >= 0.9, "held-out accuracy " + accuracy);
        assertArrayEquals(Files.readAllBytes(a.resolve(PeftAdapter.WEIGHTS)), Files.readAllBytes(b.resolve(PeftAdapter.WEIGHTS)),
                "same seed, data and threads give the same adapter bytes");

        // the adapter scores through the inference path as the trainer's own held-out metric says
        try (RewardModel m = RewardModel.open(MODEL, PeftAdapter.load(a, brm.backbone.ModelConfig.read(MODEL)),
                new RewardModel.Options(1, 4096, OptionalLong.empty()))) {
            double correct = 0;
            for (Pair p : eval) {
                float[] r = m.score(List.of(p.chosen(), p.rejected()));
                correct += r[0] > r[1] ? 1 : 0;
            }
            assertEquals(accuracy, correct / eval.size(), 1e-12);
        }
    }

    @Test
    void resumedRunEqualsUninterruptedRun() throws IOException {
        List<Pair> train = pairs(40, 3), eval = pairs(8, 4);
        Path whole = tmp.resolve("whole"), broken = tmp.resolve("broken");
        new Trainer(MODEL, train, eval, "pairs", whole, options(3, 2, 1), QUIET).run(false);
        RuntimeException crash = new RuntimeException("simulated crash");
        Trainer.Listener crashing = new Trainer.Listener() {
            @Override
            public void start(long first, long totalSteps) {}

            @Override
            public void step(long step, long totalSteps, long pairs, long tokens) {
                if (step == 9) throw crash;
            }

            @Override
            public void report(ObjectNode line) {}
        };
        assertEquals(crash, assertThrows(RuntimeException.class,
                () -> new Trainer(MODEL, train, eval, "pairs", broken, options(3, 2, 1), crashing).run(false)));
        assertTrue(Files.exists(broken.resolve(Trainer.CHECKPOINT)) && !Files.exists(broken.resolve(PeftAdapter.WEIGHTS)));
        new Trainer(MODEL, train, eval, "pairs", broken, options(3, 2, 1), QUIET).run(true);
        assertArrayEquals(Files.readAllBytes(whole.resolve(PeftAdapter.WEIGHTS)), Files.readAllBytes(broken.resolve(PeftAdapter.WEIGHTS)));
        assertEquals(Files.readString(whole.resolve(Trainer.LOG)), Files.readString(broken.resolve(Trainer.LOG)));
    }

    @Test
    void refusesToResumeWithOtherSettingsOrToOverwrite() {
        List<Pair> train = pairs(16, 5);
        Path dir = tmp.resolve("run");
        new Trainer(MODEL, train, List.of(), "pairs", dir, options(1, 0, 1), QUIET).run(false);
        var again = assertThrows(brm.BrmException.class, () -> new Trainer(MODEL, train, List.of(), "pairs", dir, options(1, 0, 1), QUIET).run(false));
        assertTrue(again.getMessage().contains("--resume"), again.getMessage());
        var other = assertThrows(brm.BrmException.class, () -> new Trainer(MODEL, train, List.of(), "pairs", dir, options(2, 0, 1), QUIET).run(true));
        assertTrue(other.getMessage().contains("total_steps"), other.getMessage());
        List<Pair> changed = new ArrayList<>(train);
        changed.set(0, new Pair(1, new int[] {1, 2, 3}, new int[] {3, 2, 1}, 0f));
        var data = assertThrows(brm.BrmException.class, () -> new Trainer(MODEL, changed, List.of(), "pairs", dir, options(1, 0, 1), QUIET).run(true));
        assertTrue(data.getMessage().contains("train_hash"), data.getMessage());
    }

    @Test
    void divergenceStopsWithStepAndLines() {
        List<Pair> train = pairs(16, 6);
        var huge = new Trainer.Options(new LoraSpec(4, 8, 0, List.of("query_key_value")), 1e30,
                new AdamW.Hyper(0.9, 0.999, 1e-8, 0), Schedule.Kind.CONSTANT, 0, 0, 8, 1, 5, 0, 1, false,
                new BradleyTerry(0, 0), 0, 0, 1);
        var e = assertThrows(brm.BrmException.class, () -> new Trainer(MODEL, train, List.of(), "pairs.jsonl", tmp.resolve("nan"), huge, QUIET).run(false));
        assertTrue(e.getMessage().matches("step \\d+: the (loss|gradient norm) is (NaN|Infinity|-Infinity) on the pairs at lines [\\d, ]+ of pairs.jsonl.*"), e.getMessage());
        assertTrue(Arrays.stream(new String[] {"checkpoint"}).allMatch(e.getMessage()::contains), e.getMessage());
    }
}
