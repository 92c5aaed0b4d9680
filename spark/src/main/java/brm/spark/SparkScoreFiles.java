package brm.spark;

import brm.BrmException;
import brm.score.ScoreSpec;
import brm.score.SparkScoring;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * brm spark-score's engine (found by brm.cli through META-INF/services): a session on the master, the
 * input read as JSONL or Parquet, {@link BrmSpark#score} and the output written. Executors get brm's JVM
 * options added to spark-submit's; a local master binds to the loopback address only; a session that
 * was already running is used and left running.
 */
public final class SparkScoreFiles implements SparkScoring {
    /** What every brm JVM needs: the Vector API and native access (FFM); executors must run JDK 25. */
    static final String BRM_JVM_OPTIONS = "--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED";

    @Override
    public void run(String master, String input, String output, String format, ScoreSpec spec, boolean skipErrors) {
        String inputFormat = input.endsWith(".jsonl") || input.endsWith(".json") ? "json" : "parquet";
        boolean owned = SparkSession.getDefaultSession().isEmpty();
        String executorOptions = System.getProperty("spark.executor.extraJavaOptions", "");
        var builder = SparkSession.builder().appName("brm spark-score").master(master);
        if (!executorOptions.contains("jdk.incubator.vector"))
            builder.config("spark.executor.extraJavaOptions", (executorOptions + " " + BRM_JVM_OPTIONS).strip());
        Path shaded = Path.of(System.getProperty("brm.home", "."), "spark/target/brm-spark-all.jar");
        if (!master.startsWith("local") && System.getProperty("spark.jars") == null && Files.exists(shaded))
            builder.config("spark.jars", shaded.toString()); // the brm launcher's driver: executors get brm from the shaded jar
        if (master.startsWith("local")) builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", false);
        SparkSession spark = builder.getOrCreate();
        long start = System.nanoTime();
        try {
            Dataset<Row> rows = spark.read().format(inputFormat).load(input);
            BrmSpark.score(rows, spec, skipErrors).write().format(format == null ? inputFormat : format).save(output);
        } catch (BrmException e) {
            throw e;
        } catch (Exception e) {
            throw new BrmException(reason(e), e);
        } finally {
            if (owned) spark.stop();
        }
        System.err.printf("brm spark-score: %s -> %s in %.1f s%n", input, output, (System.nanoTime() - start) / 1e9);
    }

    /** A row's own error (a BrmException somewhere in Spark's chain of causes), else the first line of Spark's message. */
    static String reason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) if (t instanceof BrmException b) return b.getMessage();
        String m = String.valueOf(e.getMessage());
        return m.lines().findFirst().orElse(m);
    }
}
