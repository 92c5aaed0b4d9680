package brm.policy;

import brm.BrmException;
import brm.backbone.KvCache;
import brm.backend.Packing;
import brm.reward.CausalLM;

import java.util.Arrays;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * Samples continuations of prompts from a {@link CausalLM}, n per prompt, with a KV cache and batched
 * decoding. One sample:
 *   prefill   the prompt's T tokens in one forward at positions 0..T-1, their keys and values cached;
 *             token 1 drawn from the logits after the last one
 *   decode    the last drawn token fed at the next position (one row), the next drawn from its logits
 *   stop      when a stop id (the model's eos) is drawn, kept as the last token, or after maxNewTokens tokens
 * Batching: the cache has min(batchSize, samples) slots, one sample each. Every step is one packed forward
 * over all busy slots, one row per decoding sample plus the whole prompt of each sample that has just
 * taken a slot, so the linears run as one [rows, hidden] GEMM while attention reads each sample's own
 * slot at its own positions. A slot freed by a finished sample takes the next waiting one (prompt order,
 * then sample id) at the next step.
 *
 * Determinism: sample j of prompt i draws from {@link Sampler#stream}(seed, i, j), and each row of a
 * forward is computed on its own (row-wise linears and norms, per-sequence attention), so the output
 * depends on neither the batch size nor the thread count nor which samples share a step.
 */
public final class Generator {
    /**
     * @param maxNewTokens at most this many tokens per sample (≥ 1)
     * @param batchSize    samples decoded together (cache slots)
     * @param stopIds      ids that end a sample (the model's eos_token_id); may be empty
     */
    public record Options(int maxNewTokens, Sampler.Settings sampling, long seed, int batchSize, int[] stopIds) {
        public Options {
            if (maxNewTokens < 1 || batchSize < 1) throw new IllegalArgumentException("maxNewTokens and batchSize must be >= 1");
            stopIds = stopIds.clone();
        }
    }

    /**
     * One sample of prompt {@code prompt} (index in the list given): ids its new tokens, the stop id last
     * when it stopped on one; logprob = Σ log p(token) under the raw model (see {@link Sampler}).
     */
    public record Sample(int prompt, int sampleId, int[] ids, double logprob, boolean stopped) {}

    /** Told after every step: samples finished so far and tokens drawn so far. */
    @FunctionalInterface
    public interface Progress {
        void update(int samplesDone, long tokens);
    }

    /** A sample being decoded in a cache slot. */
    private static final class Live {
        final int index, prompt, sampleId;
        final int[] ids;
        final RandomGenerator random;
        int count, cached;
        double logprob;

        Live(int index, int prompt, int sampleId, int maxNewTokens, RandomGenerator random) {
            this.index = index;
            this.prompt = prompt;
            this.sampleId = sampleId;
            this.ids = new int[maxNewTokens];
            this.random = random;
        }
    }

    private Generator() {}

    /**
     * n samples of each prompt (ids in the vocabulary, prompt length + maxNewTokens ≤ max_position_embeddings),
     * ordered by prompt, then sample id.
     */
    public static List<Sample> generate(CausalLM lm, List<int[]> prompts, int n, Options o, Progress progress) {
        int maxPositions = lm.config().maxPositionEmbeddings(), longest = 0;
        for (int i = 0; i < prompts.size(); i++) {
            int length = prompts.get(i).length;
            if (length == 0) throw new BrmException("prompt " + i + " is empty");
            if (length + o.maxNewTokens() > maxPositions)
                throw new BrmException("prompt " + i + ": " + length + " tokens + " + o.maxNewTokens() + " new ones exceed max_position_embeddings " + maxPositions);
            longest = Math.max(longest, length);
        }
        int total = Math.multiplyExact(prompts.size(), n), vocab = lm.config().vocabSize();
        Sample[] done = new Sample[total];
        if (total == 0) return List.of();
        // the last drawn token is never fed, so a sample occupies at most T + maxNewTokens - 1 positions
        KvCache cache = lm.cache(Math.min(o.batchSize(), total), longest + o.maxNewTokens() - 1);
        Live[] slots = new Live[cache.slots()];
        Sampler sampler = new Sampler(o.sampling(), vocab);
        float[] logits = new float[slots.length * vocab];
        int admitted = 0, finished = 0;
        long tokens = 0;
        while (finished < total) {
            int seqs = 0, rows = 0;
            for (int s = 0; s < slots.length; s++) {
                if (slots[s] == null && admitted < total) {
                    slots[s] = new Live(admitted, admitted / n, admitted % n, o.maxNewTokens(), Sampler.stream(o.seed(), admitted / n, admitted % n));
                    admitted++;
                }
                if (slots[s] != null) {
                    seqs++;
                    rows += slots[s].cached == 0 ? prompts.get(slots[s].prompt).length : 1;
                }
            }
            // the step's batch: per busy slot its prompt (just admitted) or its last token
            int[] starts = new int[seqs + 1], positions = new int[rows], ids = new int[rows], slotOf = new int[seqs];
            int q = 0;
            for (int s = 0, r = 0; s < slots.length; s++) {
                Live live = slots[s];
                if (live == null) continue;
                if (live.cached == 0) {
                    int[] prompt = prompts.get(live.prompt);
                    System.arraycopy(prompt, 0, ids, r, prompt.length);
                    for (int t = 0; t < prompt.length; t++) positions[r + t] = t;
                    r += prompt.length;
                } else {
                    ids[r] = live.ids[live.count - 1];
                    positions[r++] = live.cached;
                }
                slotOf[q] = s;
                starts[++q] = r;
            }
            lm.nextLogits(new Packing(starts, positions), ids, cache, slotOf, logits);
            for (int k = 0; k < seqs; k++) {
                Live live = slots[slotOf[k]];
                live.cached += starts[k + 1] - starts[k];
                int token = sampler.next(logits, k * vocab, live.random);
                live.logprob += sampler.logProb();
                live.ids[live.count++] = token;
                tokens++;
                boolean stop = contains(o.stopIds(), token);
                if (stop || live.count == o.maxNewTokens()) {
                    done[live.index] = new Sample(live.prompt, live.sampleId, Arrays.copyOf(live.ids, live.count), live.logprob, stop);
                    slots[slotOf[k]] = null;
                    finished++;
                }
            }
            if (progress != null) progress.update(finished, tokens);
        }
        return List.of(done);
    }

    private static boolean contains(int[] ids, int id) {
        for (int i : ids) if (i == id) return true;
        return false;
    }
}
