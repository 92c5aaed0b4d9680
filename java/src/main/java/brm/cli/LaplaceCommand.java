package brm.cli;

import brm.BrmException;
import brm.batch.PreferencePairs.Pair;
import brm.laplace.Fisher;
import brm.laplace.Laplace;
import brm.laplace.LayerPosterior;
import brm.laplace.Posterior;
import brm.laplace.Tokens;
import brm.lora.LoraAdapter;
import brm.reward.DifferentiableRewardModel;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;

/** brm laplace: the K-FAC Laplace posterior over an adapter's LoRA weights, written beside it. */
final class LaplaceCommand implements Command {
    @Override
    public String name() {
        return "laplace";
    }

    @Override
    public String summary() {
        return "fit the Laplace posterior (K-FAC) of a LoRA reward model on preference pairs: ADIR/posterior.safetensors";
    }

    @Override
    public String details() {
        return """
                One pass over the pairs (text rules as in train): the Fisher seeds (exact: ±sqrt(p(1-p)), mc, empirical)
                backpropagated through r(chosen) and r(rejected), each sequence one K-FAC row (the cross term of a pair is
                dropped); per LoRA matrix W [out, in] (lora_A and lora_B apart) A from its inputs and G from its output gradients
                (--tokens reduce: mean input, summed gradient per sequence; expand: every token; last: the last token),
                eigendecomposed in float64; the prior precision by marginal likelihood (--prior marglik, scalar or per layer), by
                validation NLL on logspace(-4, 4, 100) (--prior grid, needs --eval-data), or a number. Then brm score --adapter ADIR
                adds var, std and penalized rewards.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("model", "DIR", "Hugging Face model directory"));
        o.addOption(Args.required("adapter", "ADIR", "PEFT LoRA adapter directory; the posterior is written into it"));
        o.addOption(Args.required("data", "PAIRS.jsonl", "the pairs the adapter was trained on"));
        o.addOption(Args.value("eval-data", "PAIRS.jsonl", "held-out pairs (for --prior grid)"));
        o.addOption(Args.value("fisher", "exact|mc|empirical", "curvature (default exact)"));
        o.addOption(Args.value("tokens", "reduce|expand|last", "how tokens become K-FAC rows (default reduce)"));
        o.addOption(Args.value("prior", "marglik|grid|DELTA", "prior precision (default marglik)"));
        o.addOption(Args.value("prior-structure", "scalar|layer", "one δ, or one per LoRA matrix (marglik; default scalar)"));
        o.addOption(Args.flag("include-head", "put the head in the posterior too (a dense block)"));
        o.addOption(Args.value("low-rank", "K", "keep factors wider than --low-rank-threshold as rank-K sketches (default 0: all full)"));
        o.addOption(Args.value("low-rank-threshold", "N", "width above which --low-rank applies (default 1024)"));
        o.addOption(Args.value("batch-size", "B", "pairs per forward/backward (default 8)"));
        o.addOption(Args.value("seed", "S", "seed of the mc Fisher's draws (default 0)"));
        Args.addCompute(o);
        Args.addTextRules(o);
        Args.addPairOptions(o);
        return o;
    }

    @Override
    public void run(CommandLine line) {
        ModelSession session = ModelSession.open(line);
        Path adapterDir = Args.path(line, "adapter");
        LoraAdapter adapter = session.adapter(line);
        String prior = line.getOptionValue("prior", "marglik");
        Laplace.Prior kind;
        double delta = 0;
        switch (prior) {
            case "marglik" -> kind = Laplace.Prior.MARGLIK;
            case "grid" -> kind = Laplace.Prior.GRID;
            default -> {
                kind = Laplace.Prior.FIXED;
                delta = Args.number(line, "prior", 0, 0, true);
            }
        }
        String structure = line.getOptionValue("prior-structure", "scalar");
        if (!structure.equals("scalar") && !structure.equals("layer")) throw new UsageException("--prior-structure must be scalar or layer, not '" + structure + "'");
        var options = new Laplace.Options(Fisher.parse(line.getOptionValue("fisher", "exact")), Tokens.parse(line.getOptionValue("tokens", "reduce")),
                kind, delta, structure.equals("layer"), line.hasOption("low-rank") ? Args.positiveInt(line, "low-rank", 1) : 0,
                Args.positiveInt(line, "low-rank-threshold", 1024), Args.positiveInt(line, "batch-size", 8), line.hasOption("include-head"),
                line.hasOption("seed") ? Args.optionalLong(line, "seed") : 0);
        if (options.perLayer() && kind != Laplace.Prior.MARGLIK) throw new UsageException("--prior-structure layer goes with --prior marglik");
        if (options.includeHead() && adapter.scoreWeight() == null)
            throw new BrmException(adapterDir + ": --include-head needs the adapter to carry its head (modules_to_save score)");
        List<Pair> pairs = Args.readPairs(line, "data", session, false);
        List<Pair> eval = line.hasOption("eval-data") ? Args.readPairs(line, "eval-data", session, false) : List.of();
        long start = System.nanoTime();
        Posterior posterior;
        try (var model = DifferentiableRewardModel.open(session.modelDir(), adapter, Args.threads(line), OptionalLong.empty(), 0f)) {
            posterior = Laplace.fit(model, adapter, pairs, eval, options);
        }
        posterior.write(adapterDir);
        LayerPosterior first = posterior.layers().getFirst();
        System.err.printf("laplace: %d pairs, %d LoRA matrices, prior precision %s, log Z %.4f, %.1fs; wrote %s%n", pairs.size(),
                posterior.layers().size(), structure.equals("layer") ? "per layer" : String.format("%.6g", first.delta()),
                posterior.info().get("log_z").asDouble(), (System.nanoTime() - start) / 1e9, adapterDir.resolve(Posterior.FILE));
    }
}
