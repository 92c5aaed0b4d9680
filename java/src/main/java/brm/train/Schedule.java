package brm.train;

import brm.BrmException;

import java.util.Locale;

/**
 * The learning rate at optimizer step s (0-based) of T, after W warm-up steps, exactly as
 * transformers' get_{linear,cosine,constant}_schedule_with_warmup:
 *   s &lt; W:   lr · s / W
 *   s ≥ W:   lr · f((s − W) / (T − W)),  f(x) = 1 − x (linear), ½(1 + cos πx) (cosine), 1 (constant)
 */
public record Schedule(Kind kind, double lr, int warmupSteps, long totalSteps) {
    public enum Kind {
        LINEAR, COSINE, CONSTANT;

        public static Kind parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new BrmException("unknown learning-rate schedule '" + s + "' (linear, cosine or constant)");
            }
        }
    }

    public Schedule {
        if (!(lr > 0) || Double.isInfinite(lr)) throw new BrmException("learning rate must be positive, got " + lr);
        if (warmupSteps < 0) throw new BrmException("warm-up steps must be non-negative, got " + warmupSteps);
    }

    /** The learning rate of step s. */
    public double at(long s) {
        if (s < warmupSteps) return lr * s / warmupSteps;
        if (totalSteps <= warmupSteps) return lr;
        double x = (double) (s - warmupSteps) / (totalSteps - warmupSteps);
        return lr * switch (kind) {
            case LINEAR -> Math.max(0, 1 - x);
            case COSINE -> 0.5 * (1 + Math.cos(Math.PI * x));
            case CONSTANT -> 1;
        };
    }
}
