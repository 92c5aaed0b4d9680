package brm.laplace;

/**
 * The eigendecomposition of a K-FAC factor [dim, dim]: k eigenvalues (k = dim for a full factor, the
 * sketch rank for a low-rank one, whose other dim − k eigenvalues are 0) and their unit eigenvectors
 * as the columns of vectors [dim, k], row-major.
 */
public record Eigenbasis(int dim, double[] values, double[] vectors) {
    public Eigenbasis {
        if (vectors.length != (long) dim * values.length)
            throw new IllegalArgumentException(values.length + " eigenvalues, " + vectors.length + " vector entries, dim " + dim);
    }

    public int rank() {
        return values.length;
    }

    public boolean full() {
        return values.length == dim;
    }
}
