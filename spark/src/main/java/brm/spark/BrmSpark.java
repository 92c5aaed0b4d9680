package brm.spark;

import brm.BrmException;
import brm.score.ScoreSpec;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.util.Arrays;
import java.util.List;

/**
 * brm score on a Spark Dataset: the rows come back with
 *   reward     float   μ, the reward brm score writes
 *   var, std   double  σ² and σ of the Laplace posterior (when the spec uses one)
 *   penalized  double  μ − k·σ or μ − k·σ² (when the spec has k)
 *   error      string  why the row could not be scored, null when it was (with skipErrors)
 * after their own columns, in each partition's order. The input has prompt and response (and optionally
 * input) string columns or an input_ids integer-array column, or both with each row using one; an "id"
 * column, when present, names a failing row. Each executor JVM loads the model once for all its tasks
 * (the directories must be readable at the same paths on the driver and the executors) and scores
 * batches of spec.batchSize() rows. Lazy, like any Dataset transformation.
 */
public final class BrmSpark {
    private static final List<String> ADDED = List.of("reward", "var", "std", "penalized", "error");

    private BrmSpark() {}

    public static Dataset<Row> score(Dataset<Row> rows, ScoreSpec spec, boolean skipErrors) {
        if (spec.penalty().relative())
            throw new BrmException("--penalty " + spec.penalty().name().toLowerCase() + " needs brm score --relative-by (pools of a prompt's responses), which Spark scoring does not do");
        StructType in = rows.schema();
        List<String> names = Arrays.asList(in.fieldNames());
        for (String name : ADDED) if (names.contains(name)) throw new BrmException("the input already has a \"" + name + "\" column, which brm adds");
        int prompt = column(in, "prompt", DataTypes.StringType), response = column(in, "response", DataTypes.StringType);
        int inputIds = names.indexOf("input_ids");
        if (inputIds >= 0 && !(in.fields()[inputIds].dataType() instanceof ArrayType a && integral(a.elementType())))
            throw new BrmException("column input_ids must be an array of integers, not " + in.fields()[inputIds].dataType().simpleString());
        if (inputIds < 0 && (prompt < 0 || response < 0))
            throw new BrmException("the input needs prompt and response columns or an input_ids column; it has " + String.join(", ", names));
        var columns = new ScorePartition.Columns(names.size(), names.indexOf("id"), prompt, response, column(in, "input", DataTypes.StringType), inputIds);
        StructType out = in.add("reward", DataTypes.FloatType, true);
        if (spec.posterior()) out = out.add("var", DataTypes.DoubleType, true).add("std", DataTypes.DoubleType, true);
        if (spec.penalized()) out = out.add("penalized", DataTypes.DoubleType, true);
        if (skipErrors) out = out.add("error", DataTypes.StringType, true);
        return rows.mapPartitions(new ScorePartition(spec, skipErrors, columns), Encoders.row(out));
    }

    /** The column's index (-1 when absent), which must have this type. */
    private static int column(StructType schema, String name, DataType type) {
        int i = Arrays.asList(schema.fieldNames()).indexOf(name);
        if (i >= 0 && !schema.fields()[i].dataType().equals(type))
            throw new BrmException("column " + name + " must be " + type.simpleString() + ", not " + schema.fields()[i].dataType().simpleString());
        return i;
    }

    private static boolean integral(DataType t) {
        return t.equals(DataTypes.LongType) || t.equals(DataTypes.IntegerType) || t.equals(DataTypes.ShortType) || t.equals(DataTypes.ByteType);
    }
}
