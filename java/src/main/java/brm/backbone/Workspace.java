package brm.backbone;

import brm.backend.Backend;
import brm.backend.Tensor;

import java.util.HashMap;
import java.util.Map;

/**
 * Named activation buffers reused by every layer and every batch: {@code get} hands out the first
 * {@code rows} rows of a buffer that only grows when a batch has more tokens than any before, so a
 * forward pass allocates nothing once the largest batch has been seen. A name is one role (the
 * residual stream, the attention context, ...) and is never used by two live values at once.
 */
public final class Workspace {
    private final Backend backend;
    private final Map<String, Tensor> buffers = new HashMap<>();

    public Workspace(Backend backend) {
        this.backend = backend;
    }

    /** The buffer {@code name} as a [rows, cols] tensor; contents are whatever the last user left. */
    public Tensor get(String name, int rows, int cols) {
        Tensor t = buffers.get(name);
        if (t != null && t.cols() != cols) throw new IllegalStateException("buffer " + name + " has " + t.cols() + " columns, not " + cols);
        if (t == null || t.rows() < rows) {
            t = backend.allocate(rows, cols);
            buffers.put(name, t);
        }
        return t.rows() == rows ? t : t.firstRows(rows);
    }

    /** {@link #get} set to zeros: for gradients that ops accumulate into. */
    public Tensor zeroed(String name, int rows, int cols) {
        Tensor t = get(name, rows, cols);
        backend.zero(t);
        return t;
    }
}
