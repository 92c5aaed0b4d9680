package brm.laplace;

import brm.BrmException;
import brm.backend.Pooling;

import java.util.Locale;

/**
 * How a sequence's tokens become K-FAC rows, for a LoRA layer with per-token inputs a_t and output
 * gradients g_t (R rows: the sequences; R_tok: all their tokens):
 *   REDUCE  one row per sequence: â = mean_t a_t, ĝ = Σ_t g_t;  A = (1/R)·Σ â âᵀ,  G = Σ ĝ ĝᵀ
 *   EXPAND  every token a row:                               A = (1/R_tok)·Σ a aᵀ, G = Σ g gᵀ
 *   LAST    the last token of each sequence:                  A = (1/R)·Σ a aᵀ,     G = Σ g gᵀ
 */
public enum Tokens {
    REDUCE(Pooling.MEAN, Pooling.SUM), EXPAND(null, null), LAST(Pooling.LAST, Pooling.LAST);

    /** How the input side and the gradient side are pooled per sequence; null: every token is a row. */
    final Pooling inputs, gradients;

    Tokens(Pooling inputs, Pooling gradients) {
        this.inputs = inputs;
        this.gradients = gradients;
    }

    public static Tokens parse(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new BrmException("--tokens must be reduce, expand or last, not '" + s + "'");
        }
    }
}
