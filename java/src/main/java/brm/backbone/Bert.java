package brm.backbone;

import brm.backend.Backend;
import brm.backend.Packing;
import brm.backend.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * BERT encoder (transformers' BertModel without BertPooler), post-LayerNorm, bidirectional:
 *   x = LayerNorm(word[ids] + position[pos] + token_type[0])
 *   per layer: x = LayerNorm_attn(x + dense(attention(x)))          (query/key/value, no rotary)
 *              x = LayerNorm_out(x + output.dense(gelu(intermediate.dense(x))))
 * Each sequence attends only to itself: packing replaces the padding mask.
 */
public final class Bert implements Backbone {
    private record Layer(Attention attention, LayerNorm attentionNorm, GeluMlp mlp, LayerNorm outputNorm) {}

    private final BertConfig config;
    private final Embeddings embeddings;
    private final List<Layer> layers;
    private final Workspace ws;

    private Bert(BertConfig config, Backend backend, Embeddings embeddings, List<Layer> layers) {
        this.config = config;
        this.embeddings = embeddings;
        this.layers = layers;
        this.ws = new Workspace(backend);
    }

    static Bert load(BertConfig c, Checkpoint ckpt, Linears linears, Backend backend) {
        int hidden = c.hiddenSize();
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String l = c.prefix() + "encoder.layer." + i + ".";
            String self = l + "attention.self.";
            layers.add(new Layer(
                    Attention.separate(backend, linears.load(self + "query"), linears.load(self + "key"), linears.load(self + "value"),
                            linears.load(l + "attention.output.dense"), null, c.numHeads(), c.numHeads(), c.headDim(), false),
                    LayerNorm.load(backend, ckpt, l + "attention.output.LayerNorm", hidden, c.layerNormEps()),
                    new GeluMlp(backend, linears.load(l + "intermediate.dense"), linears.load(l + "output.dense")),
                    LayerNorm.load(backend, ckpt, l + "output.LayerNorm", hidden, c.layerNormEps())));
        }
        return new Bert(c, backend, Embeddings.bert(backend, ckpt, c), List.copyOf(layers));
    }

    @Override
    public BertConfig config() {
        return config;
    }

    @Override
    public Tensor forward(Packing p, int[] ids) {
        int n = p.tokens(), hidden = config.hiddenSize();
        Tensor x = ws.get("x", n, hidden), branch = ws.get("branch", n, hidden);
        embeddings.forward(p, ids, x);
        for (Layer l : layers) {
            l.attention.forward(p, x, ws, branch);
            l.attentionNorm.forward(x, branch, x);
            l.mlp.forward(x, ws, branch);
            l.outputNorm.forward(x, branch, x);
        }
        return x;
    }
}
