package brm.train;

import brm.batch.PreferencePairs;
import brm.batch.PreferencePairs.Pair;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;

import java.util.ArrayList;
import java.util.List;

/**
 * One optimizer step of LoRA reward-model training on a set of pairs:
 *   for each micro-batch of at most batchSize pairs (one packed forward of chosen, rejected, ... and
 *   one backward): accumulate ∂L/∂θ with L the Bradley–Terry loss averaged over all the step's pairs
 *   then  g ← g · min(1, maxNorm / (‖g‖ + 1e-6))   (torch.nn.utils.clip_grad_norm_; maxNorm 0: off)
 *         θ ← AdamW(θ, g, lr = schedule(step))
 * The parameters' FP32 master values live here (AdamW updates them on the host) and are written to
 * the model's tensors after each update. LoRA dropout masks are seeded by (seed, step, micro-batch).
 */
public final class OptimizerStep {
    /** The step's mean training loss, its gradient norm before clipping, and the learning rate used. */
    public record Result(double loss, double gradNorm, double lr) {}

    /** A non-finite loss or gradient norm, with the pairs of the micro-batch (or step) it came from. */
    public static final class Diverged extends RuntimeException {
        public final String what;
        public final double value;
        public final List<Pair> pairs;

        Diverged(String what, double value, List<Pair> pairs) {
            super(what + " is " + value);
            this.what = what;
            this.value = value;
            this.pairs = List.copyOf(pairs);
        }
    }

    private final DifferentiableRewardModel model;
    private final float[][] values;
    private final AdamW adam;
    private final Schedule schedule;
    private final BradleyTerry loss;
    private final double maxGradNorm;
    private final int batchSize;
    private final long seed;

    /** @param values the parameters' current values, one array per {@link DifferentiableRewardModel#parameters()} entry (updated in place) */
    public OptimizerStep(DifferentiableRewardModel model, float[][] values, AdamW adam, Schedule schedule, BradleyTerry loss,
                         double maxGradNorm, int batchSize, long seed) {
        this.model = model;
        this.values = values;
        this.adam = adam;
        this.schedule = schedule;
        this.loss = loss;
        this.maxGradNorm = maxGradNorm;
        this.batchSize = batchSize;
        this.seed = seed;
    }

    /** Runs optimizer step {@code step} (0-based: AdamW's count before it, the schedule's index) on pairs. */
    public Result run(long step, List<Pair> pairs) {
        List<Parameter> params = model.parameters();
        model.zeroGradients();
        double total = 0;
        for (int mb = 0; mb < pairs.size(); mb += batchSize) {
            List<Pair> batch = pairs.subList(mb, Math.min(pairs.size(), mb + batchSize));
            model.dropout(seed * 1_000_003L + step * 4099L + mb);
            float[] rewards = model.forward(PreferencePairs.sequences(batch));
            float[] margins = new float[batch.size()], dRewards = new float[rewards.length];
            for (int i = 0; i < margins.length; i++) margins[i] = batch.get(i).margin();
            double part = loss.lossAndGradient(rewards, margins, 1.0 / pairs.size(), dRewards);
            if (!Double.isFinite(part)) throw new Diverged("loss", part, batch);
            total += part;
            model.backward(dRewards);
        }
        float[][] grads = new float[params.size()][];
        double sumSquares = 0;
        for (int i = 0; i < grads.length; i++) {
            grads[i] = model.backend().download(params.get(i).gradient());
            for (float g : grads[i]) sumSquares += (double) g * g;
        }
        double norm = Math.sqrt(sumSquares);
        if (!Double.isFinite(norm)) throw new Diverged("gradient norm", norm, new ArrayList<>(pairs));
        if (maxGradNorm > 0 && norm > maxGradNorm) {
            float clip = (float) (maxGradNorm / (norm + 1e-6));
            for (float[] g : grads)
                for (int k = 0; k < g.length; k++) g[k] *= clip;
        }
        double lr = schedule.at(step);
        adam.update(values, grads, lr);
        for (int i = 0; i < values.length; i++) model.backend().write(values[i], params.get(i).value());
        return new Result(total, norm, lr);
    }
}
