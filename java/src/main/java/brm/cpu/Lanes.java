package brm.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;

/**
 * Horizontal sums that give the same bits in every JIT tier. FloatVector.reduceLanes(ADD) may add the
 * lanes in a different order once C2 compiles the caller, so a result could change as the JVM warms
 * up; adding them in lane order cannot.
 */
public final class Lanes {
    private Lanes() {}

    /** v[0] + v[1] + … + v[L-1], left to right. */
    public static float sum(FloatVector v) {
        float s = 0;
        for (int i = 0; i < v.length(); i++) s += v.lane(i);
        return s;
    }

    /** v[0] + v[1] + … + v[L-1], left to right. */
    public static double sum(DoubleVector v) {
        double s = 0;
        for (int i = 0; i < v.length(); i++) s += v.lane(i);
        return s;
    }
}
