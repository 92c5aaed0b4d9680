package brm.score;

/**
 * brm spark-score's engine: reads a Parquet or JSONL input with Spark, scores it and writes the result.
 * The spark module (built with -Pspark) provides it through META-INF/services; the core build has none,
 * and brm spark-score then says how to build it.
 */
public interface SparkScoring {
    /**
     * @param master     Spark master URL, or null for the one spark-submit set
     * @param format     output format, parquet or json (null: the input's)
     * @param skipErrors write a row that cannot be scored with a null reward and an "error" column instead of failing
     */
    void run(String master, String input, String output, String format, ScoreSpec spec, boolean skipErrors);
}
