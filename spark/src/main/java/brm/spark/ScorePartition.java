package brm.spark;

import brm.BrmException;
import brm.io.Jsonl;
import brm.laplace.Predictive;
import brm.score.ScoreSpec;
import brm.score.Scorer;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * One partition's rows through the JVM's shared {@link Scorer}, batchSize scorable rows per call, in
 * row order: each row [input columns] becomes [input columns, reward, (var, std), (penalized), (error)].
 * A row is read as brm score reads a JSONL line ({"id", "prompt", "response", "input", "input_ids"},
 * null columns absent), so it fails or is skipped for the same reasons, named by its id.
 */
final class ScorePartition implements MapPartitionsFunction<Row, Row> {
    /** Where the input columns are, -1 where absent. */
    record Columns(int width, int id, int prompt, int response, int input, int inputIds) implements java.io.Serializable {}

    private final ScoreSpec spec;
    private final boolean skipErrors;
    private final Columns columns;

    ScorePartition(ScoreSpec spec, boolean skipErrors, Columns columns) {
        this.spec = spec;
        this.skipErrors = skipErrors;
        this.columns = columns;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        Scorer scorer = LoadedScorers.get(spec);
        TaskContext task = TaskContext.get();
        int partition = task == null ? 0 : task.partitionId();
        return new Iterator<>() {
            private final List<Row> out = new ArrayList<>();
            private int next;
            private long number;

            @Override
            public boolean hasNext() {
                if (next == out.size()) fill();
                return next < out.size();
            }

            @Override
            public Row next() {
                if (!hasNext()) throw new NoSuchElementException();
                return out.get(next++);
            }

            /** Reads rows until batchSize of them encode (or the partition ends) and scores them. */
            private void fill() {
                out.clear();
                next = 0;
                List<Row> in = new ArrayList<>();
                List<ObjectNode> records = new ArrayList<>();
                List<String> names = new ArrayList<>();
                while (rows.hasNext() && in.size() < spec.batchSize()) {
                    Row r = rows.next();
                    in.add(r);
                    records.add(record(r));
                    names.add(columns.id >= 0 && !r.isNullAt(columns.id) ? "row id " + r.get(columns.id) : "partition " + partition + " row " + number);
                    number++;
                }
                if (in.isEmpty()) return;
                List<int[]> batch = new ArrayList<>(in.size());
                String[] errors = new String[in.size()];
                Predictive.Batch b;
                synchronized (scorer) {
                    for (int i = 0; i < in.size(); i++) {
                        try {
                            batch.add(scorer.encoder().encode(records.get(i), names.get(i)));
                        } catch (BrmException e) {
                            if (!skipErrors) throw e;
                            errors[i] = e.getMessage();
                        }
                    }
                    b = batch.isEmpty() ? null : scorer.score(batch, false, null);
                }
                int s = 0;
                for (int i = 0; i < in.size(); i++) out.add(errors[i] != null ? row(in.get(i), b, -1, errors[i]) : row(in.get(i), b, s++, null));
            }
        };
    }

    /** The row as the JSONL record brm score would read. */
    private ObjectNode record(Row r) {
        ObjectNode o = Jsonl.JSON.createObjectNode();
        if (present(r, columns.prompt)) o.put("prompt", r.getString(columns.prompt));
        if (present(r, columns.response)) o.put("response", r.getString(columns.response));
        if (present(r, columns.input)) o.put("input", r.getString(columns.input));
        if (present(r, columns.inputIds)) {
            ArrayNode ids = o.putArray("input_ids");
            for (Object id : r.getList(columns.inputIds)) {
                if (id == null) ids.addNull();
                else ids.add(((Number) id).longValue());
            }
        }
        return o;
    }

    private static boolean present(Row r, int column) {
        return column >= 0 && !r.isNullAt(column);
    }

    /** [input columns, reward, (var, std), (penalized), (error)]; sequence s of b, or nulls and the error. */
    private Row row(Row r, Predictive.Batch b, int s, String error) {
        boolean ok = error == null, posterior = spec.posterior();
        Object[] v = new Object[columns.width + 1 + (posterior ? 2 : 0) + (spec.penalized() ? 1 : 0) + (skipErrors ? 1 : 0)];
        for (int c = 0; c < columns.width; c++) v[c] = r.get(c);
        int c = columns.width;
        v[c++] = ok ? b.mean()[s] : null;
        if (posterior) {
            v[c++] = ok ? b.variance()[s] : null;
            v[c++] = ok ? Math.sqrt(b.variance()[s]) : null;
        }
        if (spec.penalized()) v[c++] = ok ? spec.penalized(b.mean()[s], b.variance()[s]) : null;
        if (skipErrors) v[c] = error;
        return RowFactory.create(v);
    }
}
