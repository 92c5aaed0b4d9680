package brm.realmodels;

import brm.bon.CurvesPlot;
import brm.imports.llama2c.Llama2cImporter;
import brm.io.DataFolder;
import brm.io.Jsonl;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * brm bon on a small hand-made scored file whose curves are worked out by hand below, and its bad input: exit 1 with
 * one stderr line naming the file and line (or prompt), no output; bad usage exit 2. --plot: a PNG of the set size that
 * decodes and shows every ranker's colour; --report-notes: the caller's Markdown in the report.
 */
class CliBonTest {
    // prompt "a" (N = 3) and prompt 7 (N = 4)
    private static final List<String> SCORED = List.of(
            "{\"prompt_id\": \"a\", \"sample_id\": 0, \"gold\": 1, \"reward\": 0.5, \"std\": 0.1, \"var\": 0.01}",
            "{\"prompt_id\": \"a\", \"sample_id\": 1, \"gold\": 3, \"reward\": 0.9, \"std\": 0.8, \"var\": 0.64}",
            "{\"prompt_id\": 7, \"sample_id\": 0, \"gold\": 0, \"reward\": 1.0, \"std\": 0.9, \"var\": 0.81}",
            "{\"prompt_id\": \"a\", \"sample_id\": 2, \"gold\": 2, \"reward\": 0.2, \"std\": 0.05, \"var\": 0.0025}",
            "{\"prompt_id\": 7, \"sample_id\": 1, \"gold\": 4, \"reward\": 0.8, \"std\": 0.1, \"var\": 0.01}",
            "",
            "{\"prompt_id\": 7, \"sample_id\": 2, \"gold\": 2, \"reward\": 0.1, \"std\": 0.2, \"var\": 0.04}",
            "{\"prompt_id\": 7, \"sample_id\": 3, \"gold\": 1, \"reward\": 0.3, \"std\": 0.3, \"var\": 0.09}");

    @TempDir
    Path tmp;

    @Test
    void curvesOfAHandMadeFile() throws IOException {
        Path in = write(SCORED), csv = tmp.resolve("curves.csv"), md = tmp.resolve("report.md");
        Cli.Result r = Cli.run("bon", "--input", in.toString(), "--n-grid", "1,3", "--rankers", "map,std:1,oracle",
                "--output", csv.toString(), "--report", md.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = Files.readAllLines(csv);
        assertEquals("ranker,n,kl,gold,gold_se,proxy", lines.get(0));
        assertEquals(7, lines.size());
        // map: "a" sorted by reward has gold 2,1,3 and 7 has 2,1,4,0; R(3) weights on N = 4 are 0, 0, 1/4, 3/4
        row(lines.get(1), "map", 1, 0, (2 + 1.75) / 2, 0.125, (1.6 / 3 + 0.55) / 2);
        row(lines.get(2), "map", 3, Math.log(3) - 2.0 / 3, (3 + 1) / 2.0, 1, (0.9 + 0.95) / 2);
        // std:1: "a" scores 0.4, 0.1, 0.15 (top gold 1), 7 scores 0.1, 0.7, -0.1, 0 (gold 2,1,0,4 ascending)
        row(lines.get(4), "std:1", 3, Math.log(3) - 2.0 / 3, (1 + 3) / 2.0, 1, (0.4 + 0.75 * 0.7 + 0.25 * 0.1) / 2);
        row(lines.get(6), "oracle", 3, Math.log(3) - 2.0 / 3, (3 + 3.5) / 2, 0.25, (3 + 3.5) / 2);
        String report = Files.readString(md);
        assertTrue(report.contains(": 2 pools, 7 samples, pool size 3–4; rankers: "), report);
        assertTrue(report.contains("| oracle | 3 | 0.4319 | 3.2500 | 0.2500 | 3.2500 |"), report);
    }

    @Test
    void plotAndReportNotes() throws IOException {
        Random random = new Random(11);
        List<String> lines = new ArrayList<>();
        for (int p = 0; p < 9; p++)
            for (int s = 0; s < 13; s++) {
                double gold = random.nextGaussian(), reward = gold + random.nextGaussian(), std = 0.1 + random.nextDouble();
                lines.add(String.format(Locale.ROOT, "{\"prompt_id\": %d, \"sample_id\": %d, \"gold\": %.6f, \"reward\": %.6f, \"std\": %.6f}",
                        p, s, gold, reward, std));
            }
        Path in = write(lines), csv = tmp.resolve("curves.csv"), md = tmp.resolve("out/report.md"), png = tmp.resolve("out/plots/curves.png");
        Path notes = tmp.resolve("notes.md");
        Files.writeString(notes, "## Demo settings\n\n- samples per prompt: 13\n- stage gold: 4.2 s\n");
        Cli.Result r = Cli.run("bon", "--input", in.toString(), "--n-grid", "1,2,3,5,8,13", "--rankers", "map,std:1,oracle",
                "--output", csv.toString(), "--report", md.toString(), "--report-notes", notes.toString(), "--plot", png.toString());
        assertEquals(0, r.status(), r.err());
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(CurvesPlot.WIDTH, image.getWidth());
        assertEquals(CurvesPlot.HEIGHT, image.getHeight());
        Set<Integer> colours = new HashSet<>();
        for (int y = 0; y < image.getHeight(); y++)
            for (int x = 0; x < image.getWidth(); x++) colours.add(image.getRGB(x, y) & 0xffffff);
        assertTrue(colours.size() > 100, "a drawing, not a blank image: " + colours.size() + " colours");
        for (int rgb : new int[] {0x1f77b4, 0xd62728, 0x2ca02c})
            assertTrue(colours.contains(rgb), "each ranker's line colour is drawn: " + Integer.toHexString(rgb));
        String report = Files.readString(md);
        assertTrue(report.contains("- samples per prompt: 13\n- stage gold: 4.2 s\n\n![best-of-n curves](plots/curves.png)\n\n| ranker |"), report);
        try (var files = Files.list(png.getParent())) {
            assertEquals(List.of(png), files.toList(), "written atomically: no temporary file left");
        }

        Cli.Result noReport = Cli.run("bon", "--input", in.toString(), "--n-grid", "1", "--output", csv.toString(), "--report-notes", notes.toString());
        assertEquals(2, noReport.status(), noReport.err());
        Path fresh = tmp.resolve("fresh.csv");
        Cli.Result noNotes = Cli.run("bon", "--input", in.toString(), "--n-grid", "1", "--output", fresh.toString(), "--report", md.toString(),
                "--report-notes", tmp.resolve("missing.md").toString());
        assertEquals(1, noNotes.status(), noNotes.err());
        assertEquals("brm bon: " + tmp.resolve("missing.md") + ": no such file", noNotes.err().strip());
        assertFalse(Files.exists(fresh));
    }

    @Test
    void defaultRankersFollowTheFields() throws IOException {
        Path csv = tmp.resolve("curves.csv");
        assertEquals(0, Cli.run("bon", "--input", write(SCORED).toString(), "--n-grid", "2", "--output", csv.toString()).status());
        assertEquals(List.of("map", "std:1", "var:1", "oracle"), Files.readAllLines(csv).stream().skip(1).map(l -> l.split(",")[0]).toList());
        List<String> plain = SCORED.stream().map(l -> l.replaceAll(", \"std\": [0-9.]+, \"var\": [0-9.]+", "")).toList();
        assertEquals(0, Cli.run("bon", "--input", write(plain).toString(), "--n-grid", "2", "--output", csv.toString()).status());
        assertEquals(List.of("map", "oracle"), Files.readAllLines(csv).stream().skip(1).map(l -> l.split(",")[0]).toList());
    }

    @Test
    void missingFieldOfARequestedRanker() throws IOException {
        List<String> lines = SCORED.stream().map(l -> l.contains("\"sample_id\": 2, \"gold\": 2") ? l.replace(", \"var\": 0.04", "") : l).toList();
        fails(lines, "1,2", "map,var:0.5", ":7: missing field \"var\" (needed by ranker var:0.5)");
    }

    @Test
    void poolSmallerThanTheLargestN() throws IOException {
        fails(SCORED, "1,4", "map", ": prompt a has 3 samples, fewer than the largest n = 4");
    }

    @Test
    void duplicateSample() throws IOException {
        List<String> lines = new ArrayList<>(SCORED);
        lines.add(SCORED.get(1));
        fails(lines, "1", "map", ":9: duplicate sample 1 of prompt a");
    }

    @Test
    void missingGoldAndBadNumbers() throws IOException {
        fails(List.of(SCORED.get(0), "{\"prompt_id\": \"a\", \"sample_id\": 1, \"reward\": 0.2}"), "1", "map", ":2: missing field \"gold\"");
        fails(List.of(SCORED.get(0), "{\"prompt_id\": \"a\", \"sample_id\": 1.5, \"gold\": 1, \"reward\": 0.2}"), "1", "map", ":2: \"sample_id\" must be an integer");
        fails(List.of("{\"prompt_id\": \"a\", \"sample_id\": 1, \"gold\": 1, \"reward\": \"high\"}"), "1", "map", ":1: \"reward\" must be a finite number");
    }

    @Test
    void badUsage() throws IOException {
        String in = write(SCORED).toString(), out = tmp.resolve("curves.csv").toString();
        for (String[] bad : new String[][] {{"--n-grid", "1,x"}, {"--n-grid", "4,2"}, {"--n-grid", "0"},
                {"--n-grid", "1", "--rankers", "map,ucb:1"}, {"--n-grid", "1", "--rankers", "std:k"}, {"--n-grid", "1", "--rankers", "map,map"}}) {
            String[] args = new String[5 + bad.length];
            System.arraycopy(new String[] {"bon", "--input", in, "--output", out}, 0, args, 0, 5);
            System.arraycopy(bad, 0, args, 5, bad.length);
            Cli.Result r = Cli.run(args);
            assertEquals(2, r.status(), String.join(" ", bad) + ": " + r.err());
            assertFalse(Files.exists(Path.of(out)));
        }
    }

    private void fails(List<String> lines, String grid, String rankers, String message) throws IOException {
        Path in = write(lines), out = tmp.resolve("fail.csv");
        Cli.Result r = Cli.run("bon", "--input", in.toString(), "--n-grid", grid, "--rankers", rankers, "--output", out.toString());
        assertEquals(1, r.status(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.errLines().get(0).startsWith("brm bon: " + in + message), r.err());
        assertFalse(Files.exists(out));
    }

    private static void row(String line, String ranker, int n, double kl, double gold, double se, double proxy) {
        String[] f = line.split(",");
        assertEquals(ranker, f[0]);
        assertEquals(n, Integer.parseInt(f[1]));
        double[] expected = {kl, gold, se, proxy};
        for (int i = 0; i < 4; i++) assertEquals(expected[i], Double.parseDouble(f[2 + i]), 1e-12, line + " column " + (2 + i));
    }

    private Path write(List<String> lines) throws IOException {
        Path file = Files.createTempFile(tmp, "scored", ".jsonl");
        Files.write(file, lines);
        return file;
    }

    @Test
    void labelDrawsPairsFromGoldRewards() throws IOException {
        Path samples = tmp.resolve("samples.jsonl"), pairs = tmp.resolve("pairs.jsonl");
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++)
            b.append("{\"prompt_id\": \"q").append(i % 2).append("\", \"prompt\": \"Tell a story.\", \"response\": \"story ").append(i)
                    .append("\", \"gold\": ").append(i).append("}\n");
        Files.writeString(samples, b.toString());
        var r = Cli.run("label", "--input", samples.toString(), "--output", pairs.toString(), "--pairs", "3", "--beta", "1000", "--seed", "1");
        assertEquals(0, r.status(), r.err());
        var lines = Files.readAllLines(pairs);
        assertEquals(6, lines.size());
        for (String line : lines) {
            var o = Jsonl.JSON.readTree(line);
            assertTrue(o.get("gold_chosen").asDouble() > o.get("gold_rejected").asDouble(), line);
            assertEquals("Tell a story.", o.get("prompt").asText());
        }
        Files.writeString(samples, "{\"prompt_id\": 1, \"prompt\": \"a\", \"response\": \"b\"}\n");
        var bad = Cli.run("label", "--input", samples.toString(), "--output", pairs.toString(), "--pairs", "1");
        assertEquals(1, bad.status());
        assertTrue(bad.err().contains(samples + ":1: no numeric \"gold\""), bad.err());
    }

    /** --gold scores the samples' text with a reward model: stories260K (imported) with a fresh head, its rewards equal brm score's. */
    @Test
    void labelWithAGoldRewardModel() throws IOException {
        String origin = "github.com/ytmytm/llama2.c64";
        Path model = tmp.resolve("stories260K");
        Llama2cImporter.importModel(DataFolder.require("stories260K", "stories260K.bin", origin),
                DataFolder.require("stories260K", "tok512.bin", origin), model, false);
        Path samples = tmp.resolve("samples.jsonl"), pairs = tmp.resolve("pairs.jsonl"), scored = tmp.resolve("scored.jsonl");
        String[] endings = {" She was happy.", " He ran away.", " The dog barked.", " They played all day."};
        StringBuilder b = new StringBuilder();
        for (String e : endings) b.append("{\"prompt_id\": 0, \"prompt\": \"Once upon a time\", \"response\": \"").append(e).append("\"}\n");
        Files.writeString(samples, b.toString());
        var r = Cli.run("label", "--input", samples.toString(), "--output", pairs.toString(), "--pairs", "6", "--beta", "1e6",
                "--gold", model.toString(), "--init-head", "3");
        assertEquals(0, r.status(), r.err());
        assertEquals(0, Cli.run("score", "--model", model.toString(), "--init-head", "3", "--input", samples.toString(),
                "--output", scored.toString()).status());
        Map<String, Double> gold = new HashMap<>();
        List<String> lines = Files.readAllLines(scored);
        for (int i = 0; i < endings.length; i++) gold.put(endings[i], Jsonl.JSON.readTree(lines.get(i)).get("reward").asDouble());
        for (String line : Files.readAllLines(pairs)) {
            var o = Jsonl.JSON.readTree(line);
            assertEquals(gold.get(o.get("chosen").asText()), o.get("gold_chosen").asDouble(), 1e-5);
            assertTrue(o.get("gold_chosen").asDouble() > o.get("gold_rejected").asDouble(), line);
        }
    }
}
