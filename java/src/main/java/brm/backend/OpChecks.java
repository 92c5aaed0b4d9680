package brm.backend;

import brm.backend.Backend.Lora;
import brm.backend.Backend.Weight;

/** The argument checks every backend runs before an op: one-line messages naming the op and the shapes. */
final class OpChecks {
    private OpChecks() {}

    static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    /** Every tensor of {@code others} has a's shape. */
    static void sameShape(String op, Tensor a, Tensor... others) {
        for (Tensor b : others)
            check(a.rows() == b.rows() && a.cols() == b.cols(),
                    op + ": shape [" + a.rows() + ", " + a.cols() + "] vs [" + b.rows() + ", " + b.cols() + "]");
    }

    static void checkLinear(Tensor x, Weight w, Lora lora, Tensor y) {
        check(x.cols() == w.in() && y.rows() == x.rows() && y.cols() == w.out()
                        && (lora == null || (lora.a().cols() == w.in() && lora.b().rows() == w.out())),
                "linear [" + x.rows() + ", " + x.cols() + "] · [" + w.out() + ", " + w.in() + "]ᵀ -> [" + y.rows() + ", " + y.cols() + "]"
                        + (lora == null ? "" : " with LoRA A [" + lora.a().rows() + ", " + lora.a().cols() + "], B [" + lora.b().rows() + ", " + lora.b().cols() + "]"));
    }

    static void checkNorm(String op, Tensor x, Tensor weight, Tensor bias, Tensor out) {
        sameShape(op, x, out);
        check(weight.rows() * weight.cols() == x.cols() && (bias == null || bias.rows() * bias.cols() == x.cols()),
                op + ": parameters do not have " + x.cols() + " values");
    }

    static void checkAttention(String op, Packing p, Heads q, Heads k, Heads v, Tensor out) {
        int dim = q.dim();
        check(k.count() == v.count() && q.count() % k.count() == 0 && k.dim() == dim && v.dim() == dim
                        && q.tensor().rows() == p.tokens() && k.tensor().rows() == p.tokens() && v.tensor().rows() == p.tokens()
                        && out.rows() == p.tokens() && out.cols() == q.count() * dim,
                op + ": " + q.count() + " query heads, " + k.count() + "/" + v.count() + " key/value heads of " + dim + " dims, "
                        + p.tokens() + " tokens, out [" + out.rows() + ", " + out.cols() + "]");
    }

    /** Checks a KV cache against the heads and the batch; returns C, the positions per slot. */
    static int checkCache(String op, Packing p, Heads heads, Tensor keys, Tensor values, int[] slots) {
        int dim = heads.dim(), capacity = keys.cols();
        check(values.cols() % dim == 0 && values.rows() % capacity == 0 && keys.rows() == values.rows() / capacity * values.cols()
                        && heads.tensor().rows() == p.tokens() && slots.length == p.seqs(),
                op + ": keys [" + keys.rows() + ", " + keys.cols() + "], values [" + values.rows() + ", " + values.cols() + "], heads of " + dim);
        for (int s = 0; s < p.seqs(); s++) {
            check(slots[s] >= 0 && slots[s] < values.rows() / capacity, op + ": slot " + slots[s] + " outside the cache");
            for (int r = p.start(s); r < p.start(s) + p.length(s); r++)
                check(p.positions()[r] >= 0 && p.positions()[r] < capacity, op + ": position " + p.positions()[r] + " outside the cache");
        }
        return capacity;
    }

    /** rotary: dims even and within a head, cos/sin tables [positions, dims/2] alike, one row of heads per token. */
    static void checkRotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin) {
        int half = dims / 2;
        check(dims % 2 == 0 && dims <= heads.dim() && cos.cols() == half && sin.cols() == half && cos.rows() == sin.rows()
                        && heads.tensor().rows() == p.tokens(),
                "rotary over " + dims + " of " + heads.dim() + " dims, tables [" + cos.rows() + ", " + cos.cols() + "]");
    }
}
