package brm.bon;

import brm.BrmException;

/**
 * How a best-of-n policy scores a sample: {@code map} by the reward, {@code std:K} by reward − K·std,
 * {@code var:K} by reward − K·var (K = 0 ranks like map), {@code oracle} by the gold reward (the ceiling).
 */
public record Ranker(String name, Kind kind, double k) {
    public enum Kind { MAP, STD, VAR, ORACLE }

    /** map, oracle, std:K or var:K with K a finite number. */
    public static Ranker parse(String spec) {
        String s = spec.strip();
        if (s.equals("map")) return new Ranker(s, Kind.MAP, 0);
        if (s.equals("oracle")) return new Ranker(s, Kind.ORACLE, 0);
        int colon = s.indexOf(':');
        Kind kind = colon < 0 ? null : switch (s.substring(0, colon)) {
            case "std" -> Kind.STD;
            case "var" -> Kind.VAR;
            default -> null;
        };
        if (kind == null) throw new BrmException("unknown ranker '" + spec + "' (map, std:K, var:K, oracle)");
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
            default -> null;
        };
    }

    /** The sample's score; a missing std or var names the file, line and field. */
    public double score(Scored.Sample s, String file) {
        return switch (kind) {
            case MAP -> s.reward();
            case ORACLE -> s.gold();
            case STD -> s.reward() - k * need(s.std(), s, file);
            case VAR -> s.reward() - k * need(s.var(), s, file);
        };
    }

    private double need(double v, Scored.Sample s, String file) {
        if (Double.isNaN(v)) throw new BrmException(file + ":" + s.line() + ": missing field \"" + field() + "\" (needed by ranker " + name + ")");
        return v;
    }
}
