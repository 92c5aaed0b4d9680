package brm.backend;

/**
 * Where the attention heads of every row live inside a tensor: head h of row r is
 * {@code tensor[r, offset + h·stride .. offset + h·stride + dim)}. One record covers both layouts:
 * separate projections (q [rows, H·D]: offset 0, stride D) and GPT-NeoX's fused query_key_value,
 * interleaved per head (qkv [rows, H·3D]: q at offset 0, k at D, v at 2D, stride 3D).
 */
public record Heads(Tensor tensor, int offset, int stride, int count, int dim) {
    public Heads {
        if (count < 1 || dim < 1 || stride < dim || offset < 0 || offset + (count - 1) * stride + dim > tensor.cols())
            throw new IllegalArgumentException("heads (offset " + offset + ", stride " + stride + ", " + count + "x" + dim
                    + ") do not fit in " + tensor.cols() + " columns");
    }

    /** Consecutive heads [rows, count·dim]: the output of a separate q, k or v projection. */
    public static Heads packed(Tensor tensor, int count, int dim) {
        return new Heads(tensor, 0, dim, count, dim);
    }
}
