package brm.spark;

import brm.score.ScoreSpec;
import brm.score.Scorer;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The models of this JVM (an executor, or the driver in local mode): one {@link Scorer} per spec's load
 * key (model, adapter, posterior, text rules, batch size, threads), loaded by the first task that needs
 * it and shared by all later ones. Tasks take turns on it (a Scorer is one computation at a time and
 * each uses all the threads), and it stays loaded for the JVM's life.
 */
final class LoadedScorers {
    private static final Map<ScoreSpec, Scorer> SCORERS = new ConcurrentHashMap<>();
    private static final AtomicInteger LOADS = new AtomicInteger();

    private LoadedScorers() {}

    static Scorer get(ScoreSpec spec) {
        return SCORERS.computeIfAbsent(spec.loadKey(), key -> {
            LOADS.incrementAndGet();
            return Scorer.open(key, key.batchSize());
        });
    }

    /** How many models this JVM has loaded (tests count them). */
    static int loads() {
        return LOADS.get();
    }
}
