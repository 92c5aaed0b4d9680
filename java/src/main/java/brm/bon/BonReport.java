package brm.bon;

import brm.io.AtomicFiles;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The outputs of a best-of-n evaluation: curves.csv (ranker,n,kl,gold,gold_se,proxy), optionally the
 * plot ({@link CurvesPlot}) and a Markdown report (inputs, grid, rankers, estimator, the caller's notes,
 * the plot, the table). Several inputs (e.g. single-proxy pools and ensemble pools) may share one report.
 */
public final class BonReport {
    private BonReport() {}

    /** One evaluated input: the scored pools and the rankers run on them. */
    public record Input(Scored scored, List<Ranker> rankers) {}

    /**
     * Writes csv, and png (the plotted rows, e.g. a readable subset) and md where not null, each atomically;
     * notes is Markdown placed after the settings.
     */
    public static void write(Path csv, Path png, Path md, String title, List<Input> inputs, int[] grid, List<Curves.Row> rows,
                             List<Curves.Row> plotted, String notes) {
        String table = csv(rows);
        AtomicFiles.write(csv, out -> out.write(table.getBytes(StandardCharsets.UTF_8)));
        if (png != null) CurvesPlot.write(png, plotted, title);
        if (md != null) {
            Path plot = png == null ? null : md.toAbsolutePath().getParent().relativize(png.toAbsolutePath());
            String text = markdown(title, inputs, grid, rows, notes, plot);
            AtomicFiles.write(md, out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
        }
    }

    public static String csv(List<Curves.Row> rows) {
        StringBuilder csv = new StringBuilder("ranker,n,kl,gold,gold_se,proxy\n");
        for (Curves.Row r : rows)
            csv.append(r.ranker()).append(',').append(r.n()).append(',').append(r.kl()).append(',').append(r.gold())
                    .append(',').append(r.goldSe()).append(',').append(r.proxy()).append('\n');
        return csv.toString();
    }

    /** Settings, the caller's notes, the plot (a path relative to the report) where drawn, then the table. */
    static String markdown(String title, List<Input> inputs, int[] grid, List<Curves.Row> rows, String notes, Path plot) {
        StringBuilder b = new StringBuilder("# ").append(title).append("\n\n");
        for (Input input : inputs) {
            Scored scored = input.scored();
            var sizes = scored.pools().stream().mapToInt(p -> p.samples().size()).summaryStatistics();
            b.append("- input: `").append(scored.file()).append("`: ").append(scored.pools().size()).append(" pools, ").append(sizes.getSum())
                    .append(" samples, pool size ").append(sizes.getMin() == sizes.getMax() ? String.valueOf(sizes.getMin()) : sizes.getMin() + "–" + sizes.getMax())
                    .append("; rankers: ").append(input.rankers().stream().map(Ranker::name).collect(Collectors.joining(", "))).append('\n');
        }
        b.append("- n grid: ").append(Arrays.stream(grid).mapToObj(String::valueOf).collect(Collectors.joining(", "))).append('\n');
        b.append("- estimator: R(n) = Σ_{i=n}^{N} C(i−1,n−1)/C(N,n)·g_(i) over each pool sorted by the ranker; KL(n) = log n − (n−1)/n;")
                .append(" gold ± standard error over pools; proxy = the same estimator on the ranker's scores\n\n");
        if (notes != null && !notes.isBlank()) b.append(notes.strip()).append("\n\n");
        if (plot != null) b.append("![best-of-n curves](").append(plot.toString().replace('\\', '/')).append(")\n\n");
        b.append("| ranker | n | KL | gold | gold s.e. | proxy |\n|---|---:|---:|---:|---:|---:|\n");
        for (Curves.Row r : rows)
            b.append(String.format(Locale.ROOT, "| %s | %d | %.4f | %.4f | %.4f | %.4f |%n", r.ranker(), r.n(), r.kl(), r.gold(), r.goldSe(), r.proxy()));
        return b.toString();
    }
}
