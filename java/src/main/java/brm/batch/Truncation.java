package brm.batch;

import brm.BrmException;

/** What to do with a sequence longer than the maximum length: fail (the default), or cut one end. */
public enum Truncation {
    ERROR, LEFT, RIGHT;

    public static Truncation parse(String s) {
        return switch (s) {
            case "error" -> ERROR;
            case "left" -> LEFT;
            case "right" -> RIGHT;
            default -> throw new BrmException("--truncate must be left, right or error, got " + s);
        };
    }
}
