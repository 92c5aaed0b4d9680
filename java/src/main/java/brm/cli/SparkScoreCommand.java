package brm.cli;

import brm.BrmException;
import brm.score.ScoreSpec;
import brm.score.SparkScoring;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.util.ServiceLoader;

/** brm spark-score: brm score's numbers as columns of a Spark Dataset, the engine in the spark module. */
final class SparkScoreCommand implements Command {
    static final String BUILD = "mvn -B -ntp -Pspark -pl spark -am install -DskipTests";

    @Override
    public String name() {
        return "spark-score";
    }

    @Override
    public String summary() {
        return "score a Parquet or JSONL dataset on Apache Spark: its rows plus reward[, var, std, penalized] (needs -Pspark)";
    }

    @Override
    public String details() {
        return """
                The input (JSONL when its path ends in .jsonl or .json, else Parquet) has prompt/response
                [/input] or input_ids columns (others are kept); the output, a Spark output directory, adds
                "reward" and with a posterior "var", "std" and with --k "penalized": the numbers brm score
                writes, in each partition's row order. Each executor JVM loads the model once and scores
                batches of --batch-size rows; --threads defaults to all of the executor's cores. A row that
                cannot be scored fails the job naming its id, or with --on-error skip is written with a null
                reward and the reason in an "error" column. Under spark-submit (README) --master is its own.
                Needs the spark module: %s""".formatted(BUILD);
    }

    @Override
    public Options options() {
        Options o = new Options();
        Args.addModel(o, true);
        o.addOption(Args.value("master", "URL", "Spark master: local[N], spark://HOST:7077, ... (default: spark-submit's)"));
        o.addOption(Args.required("input", "PATH", "input: JSONL (*.jsonl, *.json) or Parquet (a file or a directory)"));
        o.addOption(Args.required("output", "PATH", "output directory (must not exist)"));
        o.addOption(Args.value("format", "parquet|json", "output format (default: the input's)"));
        o.addOption(Args.value("on-error", "fail|skip", "a row that cannot be scored fails the job (default) or gets a null reward and an \"error\""));
        Args.addTextRules(o);
        o.addOption(Args.value("k", "K", "add \"penalized\" = μ - K·σ (or - K·σ²) (needs a posterior)"));
        o.addOption(Args.value("penalty", "std|var", "what --k multiplies (default std)"));
        o.addOption(Args.flag("no-uncertainty", "ignore the adapter's posterior: rewards only"));
        return o;
    }

    @Override
    public void run(CommandLine line) {
        SparkScoring engine = ServiceLoader.load(SparkScoring.class).findFirst()
                .orElseThrow(() -> new BrmException("the Spark module is not built; build it with: " + BUILD));
        String format = line.getOptionValue("format"), onError = line.getOptionValue("on-error", "fail");
        if (format != null && !format.equals("parquet") && !format.equals("json")) throw new UsageException("--format must be parquet or json, got '" + format + "'");
        if (!onError.equals("fail") && !onError.equals("skip")) throw new UsageException("--on-error must be fail or skip, got '" + onError + "'");
        String master = line.getOptionValue("master", System.getProperty("spark.master"));
        if (master == null) throw new UsageException("--master is required (or run through spark-submit, which sets it)");
        ScoreSpec spec = ScoreCommand.spec(line, 0);
        engine.run(master, line.getOptionValue("input"), line.getOptionValue("output"), format, spec, onError.equals("skip"));
    }
}
