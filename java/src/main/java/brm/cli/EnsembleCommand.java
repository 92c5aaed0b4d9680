package brm.cli;

import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Option;
import org.apache.commons.cli.Options;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * brm ensemble train: M LoRA reward models on the same data, differing only in their seed (LoRA init, fresh
 * head, order, dropout masks), written as DIR/seed-S; score them together with brm score --ensemble DIR.
 */
final class EnsembleCommand implements Command {
    @Override
    public String name() {
        return "ensemble";
    }

    @Override
    public String positional() {
        return "train";
    }

    @Override
    public String summary() {
        return "brm ensemble train --seeds 1,2,3 --out DIR ...: one LoRA reward model per seed (DIR/seed-S), for brm score --ensemble";
    }

    @Override
    public String details() {
        return """
                Takes every option of brm train except --seed; the members share the data and, with --eval-fraction, the split
                (drawn from the first seed). brm score --ensemble DIR then writes each line's member rewards "rewards" (and, when
                every member has a Laplace posterior, "vars"), ranked by brm bon as mean, wco, uwo:K, la-std:K, la-var:K.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        for (Option opt : new TrainCommand().options().getOptions()) if (!opt.getLongOpt().equals("seed")) o.addOption(opt);
        o.addOption(Args.required("seeds", "S1,S2,...", "one member per seed"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        if (!line.getArgs()[0].equals("train"))
            throw new UsageException("unknown ensemble action '" + line.getArgs()[0] + "' (brm ensemble train --seeds 1,2,3 --out DIR ...)");
        List<Long> seeds = new ArrayList<>();
        for (String s : line.getOptionValue("seeds").split(",")) {
            try {
                seeds.add(Long.parseLong(s.strip()));
            } catch (NumberFormatException e) {
                throw new UsageException("--seeds must be comma-separated integers, got '" + line.getOptionValue("seeds") + "'");
            }
        }
        if (seeds.stream().distinct().count() != seeds.size()) throw new UsageException("--seeds lists a seed twice");
        Path out = Args.path(line, "out");
        for (long seed : seeds) TrainCommand.train(line, seed, seeds.getFirst(), out.resolve("seed-" + seed));
    }
}
