package brm.laplace;

import brm.backbone.Linear;
import brm.backbone.LoraContext;
import brm.backbone.Workspace;
import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Pooling;
import brm.backend.Tensor;
import brm.lora.PeftAdapter;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Accumulates the K-FAC factors of every trained LoRA update during backward passes seeded by
 * {@link Fisher}. lora_A and lora_B are separate layers, each W [out, in] with per-token inputs a and
 * output gradients g:
 *   lora_A  W = A [r, in]:   a = x̃ [T, in],      g = s·u = s·dy·B [T, r]
 *   lora_B  W = B [out, r]:  a = t = x̃·Aᵀ [T, r], g = s·dy [T, out]
 * and the curvature block of W is G ⊗ A (vec(W) row-major), A from the inputs and G from the output
 * gradients, the rows made by {@link Tokens}. Totals are over the whole data set (a final partial batch
 * counts exactly); A is divided by the row count at the end.
 */
final class KfacCollector implements LoraContext.Probe {
    /** One K-FAC layer: the LoRA matrix under PEFT key, W [out, in], and its two factors. */
    record Layer(String key, int out, int in, Factor g, Factor a) {}

    private final Backend backend;
    private final LaplaceKernels kernels;
    private final Tokens tokens;
    private final int lowRank, threshold;
    private final Workspace ws;
    private final Map<String, Layer> layers = new LinkedHashMap<>();
    private Packing packing;
    private long rows, tokenRows;

    /** @param lowRank sketch rank for factors wider than threshold (0: all full) */
    KfacCollector(Backend backend, Tokens tokens, int lowRank, int threshold) {
        this.backend = backend;
        this.kernels = LaplaceKernels.of(backend);
        this.tokens = tokens;
        this.lowRank = lowRank;
        this.threshold = threshold;
        this.ws = new Workspace(backend);
    }

    /** The batch whose backward follows. */
    void batch(Packing p) {
        packing = p;
        rows += p.seqs();
        tokenRows += p.tokens();
    }

    @Override
    public void capture(Linear linear, Tensor x, Tensor u, Tensor t, Tensor dy, float scale) {
        String module = linear.module().path();
        int r = linear.lora().r();
        add(layer(PeftAdapter.loraKey(module, "A"), r, linear.module().in()), x, u, scale);
        add(layer(PeftAdapter.loraKey(module, "B"), linear.module().out(), r), t, dy, scale);
    }

    private Layer layer(String key, int out, int in) {
        return layers.computeIfAbsent(key, k -> new Layer(k, out, in, factor(k + " G", out), factor(k + " A", in)));
    }

    private Factor factor(String name, int n) {
        return new Factor(name, n, lowRank > 0 && n > threshold ? Math.min(lowRank, n) : 0, backend, kernels);
    }

    /** A full factor of another block (the head's), summed by the same kernels as the layers'. */
    Factor fullFactor(String name, int n) {
        return new Factor(name, n, 0, backend, kernels);
    }

    /** A += rows(a)ᵀ·rows(a), G += scale²·rows(g)ᵀ·rows(g). */
    private void add(Layer l, Tensor a, Tensor g, float scale) {
        l.a.add(rows(a, tokens.inputs), 1f);
        l.g.add(rows(g, tokens.gradients), scale);
    }

    /** The K-FAC rows of per-token values x [T, n]: x itself, or one pooled row per sequence. */
    private Tensor rows(Tensor x, Pooling how) {
        if (how == null) return x;
        Tensor out = ws.get("rows" + x.cols(), packing.seqs(), x.cols());
        backend.pool(packing, x, how, out);
        return out;
    }

    /** The rows A is averaged over: sequences, or tokens when expanding. */
    double count() {
        return tokens == Tokens.EXPAND ? tokenRows : rows;
    }

    List<Layer> layers() {
        return new ArrayList<>(layers.values());
    }

    LaplaceKernels kernels() {
        return kernels;
    }
}
