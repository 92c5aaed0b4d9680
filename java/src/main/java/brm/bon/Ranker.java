package brm.bon;

import brm.BrmException;

import java.util.Arrays;
import java.util.List;

/**
 * How a best-of-n policy scores a sample: {@code map} by the reward, {@code std:K} by reward − K·std,
 * {@code var:K} by reward − K·var (K = 0 ranks like map), {@code std-rel:K} and {@code var-rel:K} the same with
 * the uncertainty relative to the prompt's pool (std_rel, var_rel of brm score --relative-by), {@code oracle}
 * by the gold reward (the ceiling).
 * Over an ensemble's member rewards μ_m (M members): {@code mean} by mean_m μ_m, {@code wco} by min_m μ_m
 * (worst-case optimisation), {@code uwo:λ} by mean − λ·var_m(μ_m) (uncertainty-weighted, population
 * variance); with their Laplace variances σ²_m, the LA-ensemble's mixture moments μ = mean μ_m,
 * σ² = mean σ²_m + var_m(μ_m), by {@code la-std:K} μ − K·σ or {@code la-var:K} μ − K·σ².
 * {@code typicality} is label-free: it prefers the samples whose proxy features f are closest to their
 * pool's mean, score −‖f − mean_pool f‖².
 */
public record Ranker(String name, Kind kind, double k) {
    public enum Kind { MAP, STD, VAR, STD_REL, VAR_REL, ORACLE, MEAN, WCO, UWO, LA_STD, LA_VAR, TYPICALITY }

    /** map, oracle, mean, wco, typicality, or std:K, var:K, std-rel:K, var-rel:K, uwo:K, la-std:K, la-var:K with K a finite number. */
    public static Ranker parse(String spec) {
        String s = spec.strip();
        switch (s) {
            case "map" -> { return new Ranker(s, Kind.MAP, 0); }
            case "oracle" -> { return new Ranker(s, Kind.ORACLE, 0); }
            case "mean" -> { return new Ranker(s, Kind.MEAN, 0); }
            case "wco" -> { return new Ranker(s, Kind.WCO, 0); }
            case "typicality" -> { return new Ranker(s, Kind.TYPICALITY, 0); }
            default -> { }
        }
        int colon = s.indexOf(':');
        Kind kind = colon < 0 ? null : switch (s.substring(0, colon)) {
            case "std" -> Kind.STD;
            case "var" -> Kind.VAR;
            case "std-rel" -> Kind.STD_REL;
            case "var-rel" -> Kind.VAR_REL;
            case "uwo" -> Kind.UWO;
            case "la-std" -> Kind.LA_STD;
            case "la-var" -> Kind.LA_VAR;
            default -> null;
        };
        if (kind == null) throw new BrmException("unknown ranker '" + spec + "' (map, std:K, var:K, std-rel:K, var-rel:K, oracle, mean, wco, uwo:K, la-std:K, la-var:K, typicality)");
        try {
            double k = Double.parseDouble(s.substring(colon + 1));
            if (Double.isFinite(k)) return new Ranker(s, kind, k);
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new BrmException("ranker '" + spec + "': K must be a finite number");
    }

    /** The input field this ranker needs besides reward and gold, or null. */
    public String field() {
        return switch (kind) {
            case STD -> "std";
            case VAR -> "var";
            case STD_REL -> "std_rel";
            case VAR_REL -> "var_rel";
            case MEAN, WCO, UWO -> "rewards";
            case LA_STD, LA_VAR -> "vars";
            case TYPICALITY -> "features";
            default -> null;
        };
    }

    /** The scores [N] of a pool's samples. */
    public double[] scores(List<Scored.Sample> pool, String file) {
        double[] out = new double[pool.size()];
        if (kind != Kind.TYPICALITY) {
            for (int i = 0; i < out.length; i++) out[i] = score(pool.get(i), file);
            return out;
        }
        double[] mean = null;
        for (Scored.Sample s : pool) {
            double[] f = members(s.features(), "features", s, file);
            if (mean == null) mean = new double[f.length];
            if (f.length != mean.length) throw new BrmException(file + ":" + s.line() + ": \"features\" has " + f.length + " values, the pool's first " + mean.length);
            for (int j = 0; j < f.length; j++) mean[j] += f[j] / pool.size();
        }
        for (int i = 0; i < out.length; i++) {
            double[] f = pool.get(i).features();
            for (int j = 0; j < f.length; j++) out[i] -= (f[j] - mean[j]) * (f[j] - mean[j]);
        }
        return out;
    }

    /** The sample's score (not for typicality, which needs its pool); a missing field names the file, line and field. */
    public double score(Scored.Sample s, String file) {
        return switch (kind) {
            case MAP -> s.reward();
            case ORACLE -> s.gold();
            case STD -> s.reward() - k * need(s.std(), s, file);
            case VAR -> s.reward() - k * need(s.var(), s, file);
            case STD_REL -> s.reward() - k * need(s.stdRel(), s, file);
            case VAR_REL -> s.reward() - k * need(s.varRel(), s, file);
            case MEAN -> mean(members(s.members(), "rewards", s, file));
            case WCO -> Arrays.stream(members(s.members(), "rewards", s, file)).min().orElseThrow();
            case UWO -> {
                double[] m = members(s.members(), "rewards", s, file);
                yield mean(m) - k * variance(m);
            }
            case LA_STD, LA_VAR -> {
                double[] m = members(s.members(), "rewards", s, file), v = members(s.memberVars(), "vars", s, file);
                double mixture = mean(v) + variance(m);
                yield mean(m) - k * (kind == Kind.LA_STD ? Math.sqrt(mixture) : mixture);
            }
            case TYPICALITY -> throw new IllegalStateException("typicality scores a whole pool");
        };
    }

    private double need(double v, Scored.Sample s, String file) {
        if (Double.isNaN(v)) throw new BrmException(file + ":" + s.line() + ": missing field \"" + field() + "\" (needed by ranker " + name + ")");
        return v;
    }

    private double[] members(double[] v, String field, Scored.Sample s, String file) {
        if (v == null) throw new BrmException(file + ":" + s.line() + ": missing field \"" + field + "\" (needed by ranker " + name + ")");
        return v;
    }

    private static double mean(double[] x) {
        double sum = 0;
        for (double v : x) sum += v;
        return sum / x.length;
    }

    /** Population variance (1/M). */
    private static double variance(double[] x) {
        double m = mean(x), sum = 0;
        for (double v : x) sum += (v - m) * (v - m);
        return sum / x.length;
    }
}
