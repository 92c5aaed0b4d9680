package brm.policy;

import brm.backend.CudaParity;
import brm.reward.CausalLM;
import brm.reward.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decoding with the KV cache on the random decoder fixtures (GPT-NeoX parallel and sequential with partial and
 * full rotary, Llama with GQA and tied embeddings): its logits against the full recompute, and the Generator's
 * samples against the same model's full-sequence logits (greedy = argmax, logprob = raw log-softmax sums), stops,
 * and the independence of the output from batch size and threads.
 */
class GeneratorTest {
    static final List<String> DECODERS = List.of("gpt_neox_parallel", "gpt_neox_sequential", "llama_gqa", "llama_tied");
    private static final Sampler.Settings WARM = new Sampler.Settings(0.9, 0, 0.95);

    /** Prompts of 1, 4 and 9 random tokens (odd lengths, one of a single token). */
    private static List<int[]> prompts(int vocab, long seed) {
        Random random = new Random(seed);
        List<int[]> prompts = new ArrayList<>();
        for (int length : new int[] {1, 4, 9}) prompts.add(random.ints(length, 0, vocab).toArray());
        return prompts;
    }

    /** The fixture on the CPU backend with 1 and 2 threads and on the CUDA backend (the emulator where there is no GPU). */
    private static List<Map.Entry<String, Supplier<CausalLM>>> backends(String name) {
        return List.of(Map.entry("1 thread", () -> CausalLM.open(Fixtures.dir(name), null, 1)),
                Map.entry("2 threads", () -> CausalLM.open(Fixtures.dir(name), null, 2)),
                Map.entry("CUDA", () -> CausalLM.open(Fixtures.dir(name), null, CudaParity.backend())));
    }

    @ParameterizedTest
    @FieldSource("DECODERS")
    void cachedDecodingEqualsFullRecompute(String name) {
        Random random = new Random(17);
        int[] lengths = {13, 1, 29, 7, 40}, promptLengths = {5, 1, 1, 7, 11};
        for (var backend : backends(name))
            try (CausalLM lm = backend.getValue().get()) {
                List<int[]> sequences = new ArrayList<>();
                for (int length : lengths) sequences.add(random.ints(length, 0, lm.config().vocabSize()).toArray());
                for (int slots : new int[] {1, 2, 3}) {
                    double error = CachedDecoding.maxError(lm, sequences, promptLengths, slots);
                    System.out.printf("%-20s KV cache vs recompute, %d slot(s), %s: max rel error %.2e%n", name, slots, backend.getKey(), error);
                    assertTrue(error <= 1e-4, name + " " + backend.getKey() + ": cached logits differ from the recomputed ones by " + error);
                }
            }
    }

    /** Greedy samples are the same tokens on the CUDA backend as on the CPU (random fixtures leave no near ties), logprobs to FP32 rounding. */
    @ParameterizedTest
    @FieldSource("DECODERS")
    void greedySamplesOnCudaEqualTheCpus(String name) {
        List<List<Generator.Sample>> runs = new ArrayList<>();
        for (var backend : List.of(backends(name).get(0), backends(name).get(2)))
            try (CausalLM lm = backend.getValue().get()) {
                runs.add(Generator.generate(lm, prompts(lm.config().vocabSize(), 9), 1, new Generator.Options(9, Sampler.Settings.GREEDY, 3, 2, new int[0]), null));
            }
        for (int i = 0; i < runs.get(0).size(); i++) {
            assertArrayEquals(runs.get(0).get(i).ids(), runs.get(1).get(i).ids(), name + ": greedy sample " + i);
            assertEquals(runs.get(0).get(i).logprob(), runs.get(1).get(i).logprob(), 1e-4 * Math.max(1, Math.abs(runs.get(0).get(i).logprob())));
        }
    }

    @ParameterizedTest
    @FieldSource("DECODERS")
    void greedyIsTheArgmaxAndLogprobTheRawLogSoftmax(String name) {
        try (CausalLM lm = CausalLM.open(Fixtures.dir(name), null, 1)) {
            List<int[]> prompts = prompts(lm.config().vocabSize(), 5);
            for (Sampler.Settings settings : List.of(Sampler.Settings.GREEDY, new Sampler.Settings(0.7, 5, 1))) {
                List<Generator.Sample> samples = Generator.generate(lm, prompts, 2, new Generator.Options(11, settings, 3, 4, new int[0]), null);
                assertEquals(prompts.size() * 2, samples.size());
                for (Generator.Sample s : samples) {
                    assertEquals(11, s.ids().length);
                    int[] prompt = prompts.get(s.prompt());
                    int[] all = Arrays.copyOf(prompt, prompt.length + s.ids().length);
                    System.arraycopy(s.ids(), 0, all, prompt.length, s.ids().length);
                    float[][] logits = lm.logits(all);
                    double logprob = 0;
                    for (int t = 0; t < s.ids().length; t++) {
                        float[] row = logits[prompt.length - 1 + t];
                        int token = s.ids()[t];
                        int above = 0;
                        for (float z : row) if (z > row[token]) above++;
                        if (settings.temperature() == 0) assertEquals(0, above, name + ": greedy token " + t + " is not the argmax");
                        else assertTrue(above < 5, name + ": token " + t + " is outside the top 5");
                        double max = Double.NEGATIVE_INFINITY, sum = 0;
                        for (float z : row) max = Math.max(max, z);
                        for (float z : row) sum += Math.exp(z - max);
                        logprob += row[token] - max - Math.log(sum);
                    }
                    assertEquals(logprob, s.logprob(), 1e-4 * Math.max(1, Math.abs(logprob)), name + ": logprob");
                }
                if (settings.temperature() == 0)
                    for (int i = 0; i < samples.size(); i += 2) assertArrayEquals(samples.get(i).ids(), samples.get(i + 1).ids(), "greedy samples of one prompt agree");
            }
        }
    }

    /** Stop ids 0..4 end samples at different lengths, so slots are freed and refilled at different steps. */
    @Test
    void samplesDependOnTheSeedOnlyNotOnBatchSizeOrThreads() {
        for (String name : List.of("gpt_neox_parallel", "llama_gqa")) {
            List<Generator.Sample> reference = null;
            List<int[]> prompts = null;
            for (int threads : new int[] {1, 2})
                try (CausalLM lm = CausalLM.open(Fixtures.dir(name), null, threads)) {
                    prompts = prompts(lm.config().vocabSize(), 9);
                    for (int batch : new int[] {1, 4, 16}) {
                        List<Generator.Sample> samples = Generator.generate(lm, prompts, 3, new Generator.Options(20, WARM, 42, batch, new int[] {0, 1, 2, 3, 4}), null);
                        if (reference == null) {
                            reference = samples;
                            assertTrue(samples.stream().anyMatch(Generator.Sample::stopped) && samples.stream().anyMatch(s -> !s.stopped()),
                                    "some samples stop early, some run to the limit");
                            continue;
                        }
                        for (int i = 0; i < samples.size(); i++) {
                            Generator.Sample a = reference.get(i), b = samples.get(i);
                            String where = name + " batch " + batch + ", " + threads + " thread(s), sample " + i;
                            assertEquals(a.prompt(), b.prompt(), where);
                            assertEquals(a.sampleId(), b.sampleId(), where);
                            assertArrayEquals(a.ids(), b.ids(), where);
                            assertEquals(a.logprob(), b.logprob(), 0, where);
                        }
                    }
                    if (threads == 1) {
                        List<Generator.Sample> other = Generator.generate(lm, prompts, 3, new Generator.Options(20, WARM, 43, 4, new int[] {0, 1, 2, 3, 4}), null);
                        boolean differs = false;
                        for (int i = 0; i < other.size(); i++) differs |= !Arrays.equals(other.get(i).ids(), reference.get(i).ids());
                        assertTrue(differs, name + ": another seed gives other samples");
                        for (int i = 0; i < reference.size(); i += 3)
                            assertNotEquals(Arrays.toString(reference.get(i).ids()) + reference.get(i).logprob(),
                                    Arrays.toString(reference.get(i + 1).ids()) + reference.get(i + 1).logprob(), "samples of one prompt differ");
                    }
                }
            for (Generator.Sample s : reference) {
                for (int t = 0; t < s.ids().length - 1; t++) assertTrue(s.ids()[t] > 4, "a stop id inside a sample");
                assertEquals(s.stopped(), s.ids()[s.ids().length - 1] <= 4);
                assertTrue(s.stopped() || s.ids().length == 20);
            }
        }
    }
}
