package brm.backend;

/** How one vector is read out of a sequence's hidden states [T, hidden]. */
public enum Pooling {
    /** h[T-1]: decoders, whose last token has attended to the whole sequence. */
    LAST,
    /** (1/T)·Σ_t h[t]: mean pooling of encoders. */
    MEAN,
    /** h[0]: the first token ([CLS] in BERT). */
    FIRST,
    /** Σ_t h[t]: per-sequence sums (the K-FAC reduction of output gradients). */
    SUM
}
