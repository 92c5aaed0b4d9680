package brm.bon;

import brm.BrmException;
import brm.io.Jsonl;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A scored-samples file read into pools: lines {"prompt_id", "sample_id", "gold", "reward"[, "std"][, "var"][, "std_rel"][, "var_rel"]
 * [, "rewards": [...]][, "vars": [...]]}, one pool per prompt id in order of first appearance. sample_id is
 * the integer sample index (ties in a ranker's score go by it); a (prompt_id, sample_id) pair may appear once.
 * "rewards" and "vars" are an ensemble's per-member rewards μ_m and Laplace variances σ²_m (same length);
 * "features" the proxy's feature vector of the sample (brm score --features).
 */
public record Scored(String file, List<Pool> pools, boolean hasStd, boolean hasVar) {
    /** One sample; std, var, stdRel and varRel are NaN, members and memberVars null, where the line has none. */
    public record Sample(int line, long index, double gold, double reward, double std, double var, double stdRel, double varRel,
                         double[] members, double[] memberVars, double[] features) {}

    public record Pool(String promptId, List<Sample> samples) {}

    public static Scored read(Path path) {
        String file = path.toString();
        Map<String, List<Sample>> pools = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        boolean hasStd = false, hasVar = false;
        try (Jsonl.Reader reader = Jsonl.Reader.open(path)) {
            for (Jsonl.Line l; (l = reader.next()) != null; ) {
                String where = file + ":" + l.number();
                JsonNode v = l.value(), prompt = v.get("prompt_id"), sample = v.get("sample_id");
                if (prompt == null || prompt.isNull()) throw new BrmException(where + ": missing field \"prompt_id\"");
                if (!prompt.isValueNode()) throw new BrmException(where + ": \"prompt_id\" must be a string or a number");
                if (sample == null) throw new BrmException(where + ": missing field \"sample_id\"");
                if (!sample.isIntegralNumber() || !sample.canConvertToLong())
                    throw new BrmException(where + ": \"sample_id\" must be an integer sample index, got " + sample);
                String id = prompt.asText();
                if (!seen.add(id + "\u0000" + sample.longValue()))
                    throw new BrmException(where + ": duplicate sample " + sample.longValue() + " of prompt " + id);
                double[] members = numbers(v, "rewards", where), memberVars = numbers(v, "vars", where);
                if (members != null && memberVars != null && members.length != memberVars.length)
                    throw new BrmException(where + ": \"rewards\" has " + members.length + " members but \"vars\" has " + memberVars.length);
                Sample s = new Sample(l.number(), sample.longValue(), number(v, "gold", where, true),
                        number(v, "reward", where, true), number(v, "std", where, false), number(v, "var", where, false),
                        number(v, "std_rel", where, false), number(v, "var_rel", where, false), members, memberVars,
                        numbers(v, "features", where));
                hasStd |= !Double.isNaN(s.std());
                hasVar |= !Double.isNaN(s.var());
                pools.computeIfAbsent(id, k -> new ArrayList<>()).add(s);
            }
        }
        if (pools.isEmpty()) throw new BrmException(file + ": no scored samples");
        List<Pool> list = new ArrayList<>();
        pools.forEach((id, samples) -> list.add(new Pool(id, List.copyOf(samples))));
        return new Scored(file, List.copyOf(list), hasStd, hasVar);
    }

    /** An optional non-empty array of finite numbers; null when absent. */
    private static double[] numbers(JsonNode v, String field, String where) {
        JsonNode n = v.get(field);
        if (n == null || n.isNull()) return null;
        if (!n.isArray() || n.isEmpty()) throw new BrmException(where + ": \"" + field + "\" must be a non-empty array of numbers");
        double[] out = new double[n.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = n.get(i);
            if (!x.isNumber() || !Double.isFinite(x.doubleValue())) throw new BrmException(where + ": " + field + "[" + i + "] must be a finite number, got " + x);
            out[i] = x.doubleValue();
        }
        return out;
    }

    /** The field as a finite double; NaN when an optional field is absent or null. */
    private static double number(JsonNode v, String field, String where, boolean required) {
        JsonNode n = v.get(field);
        if (n == null || n.isNull()) {
            if (required) throw new BrmException(where + ": missing field \"" + field + "\"");
            return Double.NaN;
        }
        if (!n.isNumber() || !Double.isFinite(n.doubleValue())) throw new BrmException(where + ": \"" + field + "\" must be a finite number, got " + n);
        return n.doubleValue();
    }
}
