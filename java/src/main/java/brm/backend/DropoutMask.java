package brm.backend;

/**
 * The dropout mask every backend draws the same way, so a mask depends only on (seed, element) and
 * can be redrawn in backward instead of stored: element i of a tensor [rows, cols] (i = row·cols + col)
 * is kept when u(seed, i) ≥ p, with u = the top 24 bits of SplitMix64(seed + i·φ) / 2²⁴, uniform on
 * [0, 1) — one hash per element, no sequential state, as a GPU kernel can draw it too.
 */
public final class DropoutMask {
    private DropoutMask() {}

    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /** Whether element i survives dropout with probability p under seed. */
    public static boolean keep(long seed, long i, float p) {
        long z = seed + (i + 1) * GOLDEN;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (z >>> 40) * 0x1p-24f >= p;
    }
}
