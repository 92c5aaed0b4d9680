package brm.bon;

import brm.io.AtomicFiles;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.DefaultDrawingSupplier;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.DeviationRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Shape;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The curves of {@link Curves} as a PNG of WIDTH × HEIGHT pixels, two panels over one shared x axis
 * KL(n) = log n − (n−1)/n:
 *   top    gold(n) per ranker, a line through the grid's n with a band gold ± gold_se (one standard error over prompts)
 *   bottom proxy(n) per ranker, the same estimator on the ranker's own scores
 * A ranker has the same colour and marker in both panels; the legend names each once. Drawn headless with JFreeChart.
 */
public final class CurvesPlot {
    public static final int WIDTH = 1000, HEIGHT = 800;
    /** Distinguishable on white, in the order rankers are listed (then repeating). */
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
            new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf), new Color(0x7f7f7f), new Color(0xbcbd22)};

    private CurvesPlot() {}

    /** Writes the plot of rows (rankers outermost, as {@link Curves#of} gives them) to png, atomically. */
    public static void write(Path png, List<Curves.Row> rows, String title) {
        System.setProperty("java.awt.headless", "true");
        Map<String, YIntervalSeries> gold = new LinkedHashMap<>();
        Map<String, XYSeries> proxy = new LinkedHashMap<>();
        for (Curves.Row r : rows) {
            gold.computeIfAbsent(r.ranker(), YIntervalSeries::new).add(r.kl(), r.gold(), r.gold() - r.goldSe(), r.gold() + r.goldSe());
            proxy.computeIfAbsent(r.ranker(), XYSeries::new).add(r.kl(), r.proxy());
        }
        YIntervalSeriesCollection goldData = new YIntervalSeriesCollection();
        gold.values().forEach(goldData::addSeries);
        XYSeriesCollection proxyData = new XYSeriesCollection();
        proxy.values().forEach(proxyData::addSeries);

        DeviationRenderer bands = new DeviationRenderer(true, true);
        bands.setAlpha(0.18f);
        XYLineAndShapeRenderer lines = new XYLineAndShapeRenderer(true, true);
        lines.setDefaultSeriesVisibleInLegend(false);
        Shape[] shapes = DefaultDrawingSupplier.createStandardSeriesShapes();
        for (int s = 0; s < gold.size(); s++) {
            Color c = PALETTE[s % PALETTE.length];
            Shape shape = shapes[s % shapes.length];
            bands.setSeriesShape(s, shape);
            lines.setSeriesShape(s, shape);
            bands.setSeriesPaint(s, c);
            bands.setSeriesFillPaint(s, c);
            bands.setSeriesStroke(s, new BasicStroke(2f));
            lines.setSeriesPaint(s, c);
            lines.setSeriesStroke(s, new BasicStroke(2f));
        }
        NumberAxis kl = new NumberAxis("KL(n) = log n − (n−1)/n  (nats)");
        CombinedDomainXYPlot plot = new CombinedDomainXYPlot(kl);
        plot.setGap(12);
        plot.add(panel(goldData, bands, "gold reward (mean ± 1 s.e. over prompts)"), 3);
        plot.add(panel(proxyData, lines, "proxy (ranker's own score)"), 2);
        JFreeChart chart = new JFreeChart(title, new Font(Font.SANS_SERIF, Font.BOLD, 18), plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        AtomicFiles.write(png, out -> ChartUtils.writeChartAsPNG(out, chart, WIDTH, HEIGHT));
    }

    private static XYPlot panel(XYDataset data, XYLineAndShapeRenderer renderer, String label) {
        NumberAxis y = new NumberAxis(label);
        y.setAutoRangeIncludesZero(false);
        XYPlot p = new XYPlot(data, null, y, renderer);
        p.setBackgroundPaint(Color.WHITE);
        p.setDomainGridlinePaint(Color.LIGHT_GRAY);
        p.setRangeGridlinePaint(Color.LIGHT_GRAY);
        return p;
    }
}
