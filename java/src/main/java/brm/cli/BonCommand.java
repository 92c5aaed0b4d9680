package brm.cli;

import brm.BrmException;
import brm.bon.Curves;
import brm.bon.BonReport;
import brm.bon.Ranker;
import brm.bon.Scored;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** brm bon: best-of-n gold and proxy curves of several rankers over scored sample pools. */
final class BonCommand implements Command {
    @Override
    public String name() {
        return "bon";
    }

    @Override
    public String summary() {
        return "best-of-n curves: gold reward of the ranker's pick against KL, per ranker, from scored sample pools";
    }

    @Override
    public String details() {
        return """
                Input lines: {"prompt_id", "sample_id" (integer sample index), "gold", "reward"[, "std"][, "var"][, "rewards": [per
                ensemble member]][, "vars": [per member]]}; one pool
                per prompt. Per prompt the pool is sorted ascending by the ranker's score (ties by sample_id), gold follows
                the same order, and R(n) = sum_{i>=n} C(i-1,n-1)/C(N,n) * g_(i) is the exact expected gold of best-of-n
                drawn without replacement from the pool. Rankers: map (reward), std:K (reward - K*std), var:K
                (reward - K*var), oracle (gold); over the members: mean, wco (min), uwo:K (mean - K*variance), la-std:K and
                la-var:K (LA-ensemble: μ = mean μ_m, σ² = mean σ²_m + variance of μ_m, then μ - K*σ or μ - K*σ²); typicality
                (label-free: -||f - pool mean f||² of the "features" of brm score --features). curves.csv columns: ranker,n,kl,gold,gold_se,proxy with
                kl = log n - (n-1)/n, gold the mean over prompts, gold_se its standard error, proxy the same estimator
                on the ranker's own scores.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("input", "SCORED.jsonl", "scored samples"));
        o.addOption(Args.required("n-grid", "1,2,4,...", "the n to evaluate, increasing; each pool needs at least the largest"));
        o.addOption(Args.value("rankers", "LIST", "comma-separated rankers (default: map, std:1 and var:1 when the input has std/var, oracle)"));
        o.addOption(Args.required("output", "curves.csv", "the curves as CSV (written atomically; - for standard output)"));
        o.addOption(Args.value("report", "report.md", "also write a Markdown report: settings and table"));
        o.addOption(Args.value("report-notes", "NOTES.md", "Markdown to include in the report after its settings (a caller's settings, stage timings)"));
        o.addOption(Args.value("plot", "curves.png", "also draw the curves as a PNG: gold ± s.e. and proxy against KL, one line per ranker"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        Path report = Args.path(line, "report"), notesFile = Args.path(line, "report-notes"), plot = Args.path(line, "plot");
        if (notesFile != null && report == null) throw new UsageException("--report-notes needs --report");
        String notes = notesFile == null ? "" : read(notesFile);
        int[] grid = grid(line.getOptionValue("n-grid"));
        List<Ranker> requested = line.hasOption("rankers") ? rankers(line.getOptionValue("rankers")) : null;
        Scored scored = Scored.read(Args.path(line, "input"));
        List<Ranker> rankers = requested != null ? requested : defaults(scored);
        List<Curves.Row> rows = Curves.of(scored, rankers, grid);
        BonReport.write(Args.path(line, "output"), plot, report, "Best-of-n: gold reward against KL (" + scored.pools().size() + " prompts)",
                List.of(new BonReport.Input(scored, rankers)), grid, rows, rows, notes);
        int largest = grid[grid.length - 1];
        for (Curves.Row r : rows)
            if (r.n() == largest) System.err.printf(Locale.ROOT, "%-12s n=%d  gold %.4f ± %.4f  proxy %.4f%n", r.ranker(), r.n(), r.gold(), r.goldSe(), r.proxy());
    }

    private static int[] grid(String spec) {
        int[] grid;
        try {
            grid = Arrays.stream(spec.split(",", -1)).map(String::strip).mapToInt(Integer::parseInt).toArray();
        } catch (NumberFormatException e) {
            throw new UsageException("--n-grid must be comma-separated positive integers, got '" + spec + "'");
        }
        for (int j = 0; j < grid.length; j++)
            if (grid[j] < 1 || (j > 0 && grid[j] <= grid[j - 1]))
                throw new UsageException("--n-grid must be increasing positive integers, got '" + spec + "'");
        return grid;
    }

    /** Comma-separated rankers, each once; a bad one is a usage error. */
    static List<Ranker> rankers(String spec) {
        List<Ranker> out = new ArrayList<>();
        try {
            for (String s : spec.split(",", -1)) out.add(Ranker.parse(s));
        } catch (BrmException e) {
            throw new UsageException("--rankers: " + e.getMessage());
        }
        if (out.stream().map(Ranker::name).distinct().count() != out.size()) throw new UsageException("--rankers lists a ranker twice: '" + spec + "'");
        return out;
    }

    private static List<Ranker> defaults(Scored scored) {
        List<String> names = new ArrayList<>(List.of("map"));
        if (scored.hasStd()) names.add("std:1");
        if (scored.hasVar()) names.add("var:1");
        names.add("oracle");
        return names.stream().map(Ranker::parse).toList();
    }

    private static String read(Path notes) {
        try {
            return Files.readString(notes, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new BrmException(notes + ": no such file");
        } catch (IOException e) {
            throw new BrmException(notes + ": cannot read: " + e.getMessage(), e);
        }
    }
}
