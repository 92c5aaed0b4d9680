package brm.backend;

/**
 * A backend-owned matrix (FP32 on the CPU backend, FP64 on the reference backend) [rows, cols], row-major. Model code never sees its storage: it only
 * passes handles to {@link Backend} ops, so the same model code runs on any backend.
 */
public interface Tensor {
    int rows();

    int cols();

    /** The first {@code rows} rows [rows, cols], sharing storage: how a buffer sized for the largest batch serves a smaller one. */
    Tensor firstRows(int rows);

    /** {@code rows}, checked as a row count for {@link #firstRows} of t. */
    static int firstRowsOf(Tensor t, int rows) {
        if (rows < 0 || rows > t.rows()) throw new IllegalArgumentException("tensor has " + t.rows() + " rows, not " + rows);
        return rows;
    }
}
