package brm.cli;

import brm.BrmException;
import brm.batch.PreferencePairs.Pair;
import brm.train.AdamW;
import brm.train.BradleyTerry;
import brm.train.LoraSpec;
import brm.train.Schedule;
import brm.train.Trainer;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** brm train: a LoRA reward model (MAP) by Bradley–Terry on preference pairs, written as a PEFT adapter. */
final class TrainCommand implements Command {
    @Override
    public String name() {
        return "train";
    }

    @Override
    public String summary() {
        return "train a LoRA reward model on preference pairs (Bradley-Terry, AdamW); writes a PEFT adapter";
    }

    @Override
    public String details() {
        return """
                Pair lines: {"prompt", "chosen", "rejected"[, "input"]} or {"chosen_ids", "rejected_ids"}, optional "margin".
                Loss per pair: -log sigmoid(r_c - r_r - margin) + C (r_c + r_r)^2 + beta (r_c^2 + r_r^2)/2, mean over the pairs
                of a step. LoRA on --targets (default: PEFT's default for the architecture), A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0;
                the head score trains too, from the model's own or a fresh one drawn from --seed. ADIR gets adapter_config.json
                and adapter_model.safetensors (PEFT format), train_log.jsonl (one line per report) and checkpoint.safetensors
                (every --save-every steps and each epoch); --resume continues from the checkpoint to the same result.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("model", "DIR", "Hugging Face model directory (config.json, model.safetensors, tokenizer.json)"));
        o.addOption(Args.required("data", "PAIRS.jsonl", "training pairs"));
        o.addOption(Args.required("out", "ADIR", "output adapter directory"));
        o.addOption(Args.value("eval-data", "PAIRS.jsonl", "held-out pairs for the reports"));
        o.addOption(Args.value("eval-fraction", "F", "hold out this fraction of --data instead (seeded split)"));
        o.addOption(Args.value("lora-r", "R", "LoRA rank (default 8)"));
        o.addOption(Args.value("lora-alpha", "A", "LoRA alpha; scale = alpha / r (default 16)"));
        o.addOption(Args.value("lora-dropout", "P", "dropout on the LoRA input while training (default 0)"));
        o.addOption(Args.value("targets", "M1,M2", "LoRA target modules (default: gpt_neox query_key_value; llama q_proj,v_proj; bert query,value)"));
        o.addOption(Args.value("lr", "LR", "peak learning rate (default 1e-4)"));
        o.addOption(Args.value("adam-beta1", "B1", "AdamW beta1 (default 0.9)"));
        o.addOption(Args.value("adam-beta2", "B2", "AdamW beta2 (default 0.999)"));
        o.addOption(Args.value("adam-eps", "EPS", "AdamW eps (default 1e-8)"));
        o.addOption(Args.value("weight-decay", "WD", "AdamW decoupled weight decay (default 0)"));
        o.addOption(Args.value("schedule", "linear|cosine|constant", "learning-rate decay after warm-up (default linear)"));
        o.addOption(Args.value("warmup-steps", "N", "linear warm-up steps (default 0)"));
        o.addOption(Args.value("warmup-ratio", "F", "warm-up as a fraction of all steps (instead of --warmup-steps)"));
        o.addOption(Args.value("max-grad-norm", "G", "clip the global gradient norm to G; 0 disables (default 1)"));
        o.addOption(Args.value("batch-size", "B", "pairs per forward/backward (default 8)"));
        o.addOption(Args.value("grad-accum", "K", "micro-batches per optimizer step (default 1)"));
        o.addOption(Args.value("epochs", "E", "passes over the data (default 1)"));
        o.addOption(Args.value("steps", "N", "optimizer steps (instead of --epochs)"));
        o.addOption(Args.value("seed", "S", "seed of LoRA init, fresh head, shuffling and split (default 42)"));
        o.addOption(Args.flag("margin", "subtract each pair's \"margin\" field inside the loss"));
        o.addOption(Args.value("center-rewards", "C", "add C·mean((r_c + r_r)^2) (default 0)"));
        o.addOption(Args.value("score-l2", "BETA", "add BETA·mean((r_c^2 + r_r^2)/2) (default 0)"));
        o.addOption(Args.value("eval-every", "N", "also report every N steps (default: each epoch)"));
        o.addOption(Args.value("save-every", "N", "also checkpoint every N steps (default: each epoch)"));
        o.addOption(Args.flag("resume", "continue from ADIR/checkpoint.safetensors"));
        Args.addCompute(o);
        Args.addTextRules(o);
        Args.addPairOptions(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        long seed = line.hasOption("seed") ? Args.optionalLong(line, "seed") : 42;
        train(line, seed, seed, Args.path(line, "out"));
    }

    /** One training run with the options of line, seeded by seed, the --eval-fraction split by splitSeed, into out. */
    static void train(CommandLine line, long seed, long splitSeed, Path out) {
        ModelSession session = ModelSession.open(line);
        if (line.hasOption("eval-data") && line.hasOption("eval-fraction")) throw new UsageException("give --eval-data or --eval-fraction, not both");
        if (line.hasOption("steps") && line.hasOption("epochs")) throw new UsageException("give --epochs or --steps, not both");
        if (line.hasOption("warmup-steps") && line.hasOption("warmup-ratio")) throw new UsageException("give --warmup-steps or --warmup-ratio, not both");
        boolean margins = line.hasOption("margin");
        var encoder = session.encoder(true);
        Path data = Args.path(line, "data");
        List<Pair> train = Args.readPairs(line, "data", session, margins), eval = List.of();
        if (line.hasOption("eval-data")) {
            eval = Args.readPairs(line, "eval-data", session, false);
        } else if (line.hasOption("eval-fraction")) {
            double f = Args.number(line, "eval-fraction", 0, 0, true);
            if (f >= 1) throw new UsageException("--eval-fraction must be below 1, got " + f);
            Trainer.Split split = Trainer.holdOut(train, f, splitSeed, data.toString());
            train = split.train();
            eval = split.eval();
        }
        int r = Args.positiveInt(line, "lora-r", 8);
        List<String> targets = line.hasOption("targets")
                ? Arrays.stream(line.getOptionValue("targets").split(",")).map(String::trim).filter(t -> !t.isEmpty()).toList()
                : session.config().defaultLoraTargets();
        LoraSpec lora = new LoraSpec(r, Args.number(line, "lora-alpha", 16, 0, true), Args.number(line, "lora-dropout", 0, 0, false), targets);
        lora.modules(session.config());
        int batchSize = Args.positiveInt(line, "batch-size", 8), gradAccum = Args.positiveInt(line, "grad-accum", 1);
        int epochs = line.hasOption("steps") ? 0 : Args.positiveInt(line, "epochs", 1);
        long steps = line.hasOption("steps") ? Args.positiveInt(line, "steps", 1) : 0;
        long perEpoch = Math.ceilDiv(train.size(), (long) batchSize * gradAccum), total = steps > 0 ? steps : epochs * perEpoch;
        int warmup = line.hasOption("warmup-ratio")
                ? (int) Math.ceil(Args.number(line, "warmup-ratio", 0, 0, false) * total)
                : line.hasOption("warmup-steps") ? Args.positiveInt(line, "warmup-steps", 0) : 0;
        var options = new Trainer.Options(lora, Args.number(line, "lr", 1e-4, 0, true),
                new AdamW.Hyper(Args.number(line, "adam-beta1", 0.9, 0, false), Args.number(line, "adam-beta2", 0.999, 0, false),
                        Args.number(line, "adam-eps", 1e-8, 0, true), Args.number(line, "weight-decay", 0, 0, false)),
                Schedule.Kind.parse(line.getOptionValue("schedule", "linear")), warmup,
                Args.number(line, "max-grad-norm", 1, 0, false), batchSize, gradAccum, epochs, steps, seed, margins,
                new BradleyTerry(Args.number(line, "center-rewards", 0, 0, false), Args.number(line, "score-l2", 0, 0, false)),
                line.hasOption("eval-every") ? Args.positiveInt(line, "eval-every", 1) : 0,
                line.hasOption("save-every") ? Args.positiveInt(line, "save-every", 1) : 0,
                Args.threads(line));
        Progress progress = new Progress("train", "pairs");
        long[] seen = new long[2];
        int trainPairs = train.size(), heldOut = eval.size();
        Trainer trainer = new Trainer(session.modelDir(), train, eval, data.toString(), out, options, new Trainer.Listener() {
            @Override
            public void start(long first, long totalSteps) {
                System.err.printf("train: %d pairs (%d held out), %d steps of %d pairs%s, LoRA r=%d alpha=%s on %s%n", trainPairs, heldOut,
                        totalSteps, batchSize * gradAccum, first > 0 ? " resumed at step " + first : "", r, lora.alpha(), String.join(",", targets));
            }

            @Override
            public void step(long step, long totalSteps, long pairs, long tokens) {
                seen[0] = pairs;
                seen[1] = tokens;
                progress.update(pairs, tokens);
            }

            @Override
            public void report(ObjectNode l) {
                StringBuilder b = new StringBuilder(String.format("step %d/%d  epoch %.2f  loss %.4f  lr %.3g",
                        l.get("step").asLong(), total, l.get("epoch").asDouble(), l.get("loss").asDouble(), l.get("lr").asDouble()));
                if (l.has("eval_accuracy"))
                    b.append(String.format("  eval accuracy %.4f  nll %.4f  ece %.4f", l.get("eval_accuracy").asDouble(),
                            l.get("eval_nll").asDouble(), l.get("eval_ece").asDouble()));
                System.err.println(b);
            }
        });
        trainer.run(line.hasOption("resume"));
        progress.finish(seen[0], seen[1]);
        System.err.println("train: wrote " + out);
    }
}
