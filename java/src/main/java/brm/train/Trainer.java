package brm.train;

import brm.BrmException;
import brm.backbone.Checkpoint;
import brm.backbone.ModelConfig;
import brm.batch.PreferencePairs;
import brm.batch.PreferencePairs.Pair;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.io.SafetensorsWriter;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;
import brm.reward.PreferenceMetrics;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;

/**
 * Trains a LoRA reward model (MAP) on preference pairs with the Bradley–Terry loss.
 *
 * One optimizer step takes the next batchSize·gradAccum pairs of the epoch's order (a seeded
 * shuffle of the training pairs; the last step of an epoch takes what is left) in gradAccum
 * micro-batches of at most batchSize pairs, each one packed forward of its 2·batchSize sequences
 * and one backward; the gradient is that of the mean loss over the step's pairs. Then the global
 * gradient norm is clipped to maxGradNorm (torch's clip_grad_norm_), and AdamW updates the LoRA
 * factors and the head at the scheduled learning rate.
 *
 * Everything that varies comes from the seed: LoRA A, a fresh head when the model has none, the
 * order of each epoch. A step is a function of (parameters, moments, step number) only, so the
 * checkpoint (ADIR/checkpoint.safetensors: parameters, moments and the run's settings) resumes to
 * the same bits as an uninterrupted run on the same backend and thread count.
 */
public final class Trainer {
    /** Settings of a run; all but threads must match when resuming. */
    public record Options(LoraSpec lora, double lr, AdamW.Hyper adam, Schedule.Kind schedule, int warmupSteps,
                          double maxGradNorm, int batchSize, int gradAccum, int epochs, long steps, long seed,
                          boolean margins, BradleyTerry loss, long evalEvery, long saveEvery, int threads) {
        public Options {
            if (batchSize < 1 || gradAccum < 1) throw new BrmException("batch size and gradient accumulation must be at least 1");
            if (epochs < 1 && steps < 1) throw new BrmException("give a positive number of epochs or steps");
            if (!(maxGradNorm >= 0)) throw new BrmException("max gradient norm must be non-negative, got " + maxGradNorm);
        }
    }

    /** Progress of a run: its start (inputs checked, from step {@code first}), each step, each report (the lines of train_log.jsonl). */
    public interface Listener {
        void start(long first, long totalSteps);

        void step(long step, long totalSteps, long pairs, long tokens);

        void report(ObjectNode line);
    }

    public static final String LOG = "train_log.jsonl";
    public static final String CHECKPOINT = "checkpoint.safetensors";
    private static final String STATE = "brm_train_state";

    private final Path modelDir, out;
    private final List<Pair> train, eval;
    private final String dataName;
    private final Options o;
    private final Listener listener;
    private final long stepsPerEpoch, totalSteps;
    private final List<String> log = new ArrayList<>();

    /**
     * @param dataName how error messages name the training data (its path)
     * @param eval     held-out pairs, possibly empty
     */
    public Trainer(Path modelDir, List<Pair> train, List<Pair> eval, String dataName, Path out, Options options, Listener listener) {
        this.modelDir = modelDir;
        this.train = List.copyOf(train);
        this.eval = List.copyOf(eval);
        this.dataName = dataName;
        this.out = out;
        this.o = options;
        this.listener = listener;
        this.stepsPerEpoch = Math.ceilDiv(train.size(), (long) o.batchSize * o.gradAccum);
        this.totalSteps = o.steps > 0 ? o.steps : o.epochs * stepsPerEpoch;
    }

    public long totalSteps() {
        return totalSteps;
    }

    /** Trains from scratch, or from ADIR's checkpoint with resume, and writes the adapter into ADIR. */
    public void run(boolean resume) {
        ModelConfig config = ModelConfig.read(modelDir);
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new BrmException(out + ": cannot create the output directory: " + e.getMessage());
        }
        Path checkpoint = out.resolve(CHECKPOINT);
        ObjectNode settings = settings(config);
        TrainState state = null;
        if (resume) {
            if (!Files.isRegularFile(checkpoint)) throw new BrmException(out + ": no " + CHECKPOINT + " to resume from");
            state = TrainState.read(checkpoint, STATE);
            state.requireSettings(settings, checkpoint);
            readLog(state.step());
        } else if (Files.exists(checkpoint) || Files.exists(out.resolve(PeftAdapter.WEIGHTS))) {
            throw new BrmException(out + ": already holds a training run; pass --resume to continue it or choose another --out");
        }
        LoraAdapter initial = o.lora.initial(config, o.seed);
        OptionalLong freshHead;
        try (Checkpoint c = Checkpoint.open(modelDir, config)) {
            freshHead = c.contains(config.score().path() + ".weight") ? OptionalLong.empty() : OptionalLong.of(o.seed);
        }
        try (DifferentiableRewardModel model = DifferentiableRewardModel.open(modelDir, initial, o.threads, freshHead, (float) o.lora.dropout())) {
            List<Parameter> params = model.parameters();
            float[][] values = new float[params.size()][];
            for (int i = 0; i < values.length; i++) values[i] = model.backend().download(params.get(i).value());
            AdamW adam;
            if (state != null) {
                state.restore(params, values);
                for (int i = 0; i < values.length; i++) model.backend().write(values[i], params.get(i).value());
                adam = state.optimizer(o.adam, params);
            } else {
                adam = new AdamW(o.adam, params.stream().mapToInt(Parameter::size).toArray());
            }
            listener.start(adam.step(), totalSteps);
            loop(model, values, adam, settings, state == null ? 0 : state.lossSum(), state == null ? 0 : state.lossSteps());
            write(config, params, values);
        }
    }

    private void loop(DifferentiableRewardModel model, float[][] values, AdamW adam, ObjectNode settings, double lossSinceReport, long stepsSinceReport) {
        List<Parameter> params = model.parameters();
        OptimizerStep optimizer = new OptimizerStep(model, values, adam, new Schedule(o.schedule, o.lr, o.warmupSteps, totalSteps),
                o.loss, o.maxGradNorm, o.batchSize, o.seed);
        int[] order = null;
        long orderEpoch = -1, pairsSeen = 0, tokensSeen = 0;
        for (long step = adam.step(); step < totalSteps; step++) {
            long epoch = step / stepsPerEpoch;
            if (epoch != orderEpoch) {
                order = shuffled(train.size(), o.seed, epoch);
                orderEpoch = epoch;
            }
            int from = (int) (step % stepsPerEpoch * o.batchSize * o.gradAccum);
            List<Pair> pairs = new ArrayList<>();
            for (int i = from; i < Math.min(train.size(), from + o.batchSize * o.gradAccum); i++) pairs.add(train.get(order[i]));
            OptimizerStep.Result r;
            try {
                r = optimizer.run(step, pairs);
            } catch (OptimizerStep.Diverged d) {
                throw diverged(step, d);
            }
            pairsSeen += pairs.size();
            for (Pair p : pairs) tokensSeen += p.tokens();
            lossSinceReport += r.loss();
            stepsSinceReport++;
            listener.step(step + 1, totalSteps, pairsSeen, tokensSeen);

            long done = step + 1;
            boolean epochEnd = done % stepsPerEpoch == 0 || done == totalSteps;
            if (epochEnd || (o.evalEvery > 0 && done % o.evalEvery == 0)) {
                ObjectNode line = Jsonl.JSON.createObjectNode().put("step", done).put("epoch", (double) done / stepsPerEpoch)
                        .put("loss", lossSinceReport / stepsSinceReport).put("lr", r.lr()).put("grad_norm", r.gradNorm());
                if (!eval.isEmpty()) {
                    PreferenceMetrics m = evaluate(model, eval, o.batchSize);
                    line.put("eval_pairs", m.pairs()).put("eval_accuracy", m.accuracy()).put("eval_nll", m.nll()).put("eval_ece", m.ece());
                }
                log.add(line.toString());
                writeLog();
                listener.report(line);
                lossSinceReport = 0;
                stepsSinceReport = 0;
            }
            if (epochEnd || (o.saveEvery > 0 && done % o.saveEvery == 0))
                TrainState.write(out.resolve(CHECKPOINT), STATE, done, lossSinceReport, stepsSinceReport, settings, params, values, adam);
        }
    }

    /** Accuracy, BT NLL and ECE of the model on pairs, batchSize pairs per forward. */
    public static PreferenceMetrics evaluate(DifferentiableRewardModel model, List<Pair> pairs, int batchSize) {
        model.dropout(null);
        float[] chosen = new float[pairs.size()], rejected = new float[pairs.size()];
        for (int from = 0; from < pairs.size(); from += batchSize) {
            List<Pair> batch = pairs.subList(from, Math.min(pairs.size(), from + batchSize));
            float[] r = model.forward(PreferencePairs.sequences(batch));
            for (int i = 0; i < batch.size(); i++) {
                chosen[from + i] = r[2 * i];
                rejected[from + i] = r[2 * i + 1];
            }
        }
        return PreferenceMetrics.of(chosen, rejected);
    }

    /** Pairs for training and held out for the reports. */
    public record Split(List<Pair> train, List<Pair> eval) {}

    /** Holds out ⌈f·n⌉ pairs chosen by seed; both parts keep file order. */
    public static Split holdOut(List<Pair> pairs, double f, long seed, String dataName) {
        int held = (int) Math.ceil(f * pairs.size());
        if (held >= pairs.size()) throw new BrmException(dataName + ": holding out " + f + " of " + pairs.size() + " pairs leaves none to train on");
        boolean[] out = new boolean[pairs.size()];
        int[] order = shuffled(pairs.size(), seed, -1);
        for (int i = 0; i < held; i++) out[order[i]] = true;
        List<Pair> train = new ArrayList<>(), eval = new ArrayList<>();
        for (int i = 0; i < pairs.size(); i++) (out[i] ? eval : train).add(pairs.get(i));
        return new Split(train, eval);
    }

    /** A permutation of [0, n) for epoch e, the same for the same seed. */
    static int[] shuffled(int n, long seed, long epoch) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Random random = new Random(seed * 0x9E3779B97F4A7C15L + epoch);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
    }

    private BrmException diverged(long step, OptimizerStep.Diverged d) {
        StringBuilder lines = new StringBuilder();
        for (Pair p : d.pairs) lines.append(lines.isEmpty() ? "" : ", ").append(p.line());
        Path checkpoint = out.resolve(CHECKPOINT);
        return new BrmException("step " + (step + 1) + ": the " + d.what + " is " + d.value + " on the pairs at lines " + lines + " of " + dataName
                + "; stopped (" + (Files.exists(checkpoint) ? "the last checkpoint is kept in " + checkpoint : "no checkpoint was saved yet")
                + "; try a lower --lr)");
    }

    /** The settings a resumed run must share with the checkpoint: everything but threads, plus the data. */
    private ObjectNode settings(ModelConfig config) {
        ObjectNode s = Jsonl.JSON.createObjectNode();
        s.put("model", modelDir.toAbsolutePath().normalize().toString()).put("model_type", config.modelType());
        s.put("r", o.lora.r()).put("lora_alpha", o.lora.alpha()).put("lora_dropout", o.lora.dropout());
        o.lora.targets().forEach(s.putArray("targets")::add);
        s.put("lr", o.lr).put("beta1", o.adam.beta1()).put("beta2", o.adam.beta2()).put("eps", o.adam.eps())
                .put("weight_decay", o.adam.weightDecay()).put("schedule", o.schedule.name().toLowerCase()).put("warmup_steps", o.warmupSteps)
                .put("max_grad_norm", o.maxGradNorm).put("batch_size", o.batchSize).put("grad_accum", o.gradAccum)
                .put("total_steps", totalSteps).put("seed", o.seed).put("margins", o.margins)
                .put("center_rewards", o.loss.centerRewards()).put("score_l2", o.loss.scoreL2())
                .put("eval_every", o.evalEvery).put("save_every", o.saveEvery);
        s.put("train_pairs", train.size()).put("train_hash", hash(train)).put("eval_pairs", eval.size()).put("eval_hash", hash(eval));
        return s;
    }

    /** FNV-1a over the pairs' ids and margins: tells whether a resumed run sees the same data. */
    static String hash(List<Pair> pairs) {
        long h = 0xcbf29ce484222325L;
        for (Pair p : pairs) {
            for (int[] side : new int[][] {p.chosen(), p.rejected()}) {
                h = (h ^ side.length) * 0x100000001b3L;
                for (int id : side) h = (h ^ id) * 0x100000001b3L;
            }
            h = (h ^ Float.floatToIntBits(p.margin())) * 0x100000001b3L;
        }
        return Long.toHexString(h);
    }

    private void readLog(long step) {
        Path file = out.resolve(LOG);
        if (!Files.isRegularFile(file)) return;
        try (Jsonl.Reader reader = Jsonl.Reader.open(file)) {
            for (Jsonl.Line l = reader.next(); l != null; l = reader.next())
                if (l.value().path("step").asLong() <= step) log.add(l.value().toString());
        }
    }

    private void writeLog() {
        String text = String.join("\n", log) + "\n";
        AtomicFiles.write(out.resolve(LOG), stream -> stream.write(text.getBytes(StandardCharsets.UTF_8)));
    }

    private void write(ModelConfig config, List<Parameter> params, float[][] values) {
        Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++)
            tensors.put(params.get(i).key(), new SafetensorsWriter.Tensor(values[i], params.get(i).value().rows(), params.get(i).value().cols()));
        PeftAdapter.write(out, modelDir.toAbsolutePath().normalize().toString(), o.lora.r(), o.lora.alpha(), o.lora.dropout(), o.lora.targets(), tensors);
    }
}
