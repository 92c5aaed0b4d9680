package brm.reward;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Next-token logits of the decoder fixtures against the PyTorch float64 references (same tolerance as rewards). */
class CausalLMFixtureTest {
    static final List<String> DECODERS = Fixtures.DECODERS;

    @ParameterizedTest
    @FieldSource("DECODERS")
    void logitsMatchReference(String name) {
        JsonNode e = Fixtures.expected(name);
        List<int[]> sequences = Fixtures.sequences(e);
        for (int threads : new int[]{1, 2}) {
            try (CausalLM lm = CausalLM.open(Fixtures.dir(name), null, threads)) {
                double worst = 0;
                for (int s = 0; s < sequences.size(); s++)
                    worst = Math.max(worst, Fixtures.maxRelError(lm.lastLogits(sequences.get(s)), Fixtures.flat(e.get("last_logits").get(s)), 1));
                float[][] all = lm.logits(sequences.getFirst());
                assertEquals(sequences.getFirst().length, all.length);
                double[] expectedAll = Fixtures.flat(e.get("all_logits_first"));
                int vocab = all[0].length;
                for (int t = 0; t < all.length; t++)
                    worst = Math.max(worst, Fixtures.maxRelError(all[t], java.util.Arrays.copyOfRange(expectedAll, t * vocab, (t + 1) * vocab), 1));
                System.out.printf("%-45s max rel error %.2e%n", name + " logits, " + threads + " thread(s)", worst);
                assertTrue(worst <= RewardModelFixtureTest.TOLERANCE, name + ": logits max relative error " + worst);
            }
        }
    }
}
