package brm.head;

import brm.BrmException;
import brm.backbone.BertConfig;
import brm.backbone.Checkpoint;
import brm.backbone.GptNeoXConfig;
import brm.backbone.Linear;
import brm.backbone.LinearModule;
import brm.backbone.LlamaConfig;
import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.Tensor;

/**
 * The next-token head of the decoders: logits [rows, vocab] = h [rows, hidden] · Eᵀ, no bias, with
 * E = GPT-NeoX embed_out / Llama lm_head, or the input embedding when tie_word_embeddings is set.
 */
public final class LmHead {
    private final Linear head;

    private LmHead(Linear head) {
        this.head = head;
    }

    public static LmHead load(ModelConfig config, Checkpoint ckpt, Backend backend) {
        String name = switch (config) {
            case GptNeoXConfig c -> c.tieWordEmbeddings() ? c.prefix() + "embed_in.weight" : "embed_out.weight";
            case LlamaConfig c -> c.tieWordEmbeddings() ? c.prefix() + "embed_tokens.weight" : "lm_head.weight";
            case BertConfig c -> throw new BrmException(ckpt.dir() + ": bert is an encoder; it has no next-token logits");
        };
        int vocab = config.vocabSize(), hidden = config.hiddenSize();
        float[] w = ckpt.floats(name, vocab, hidden);
        LinearModule module = new LinearModule(name.substring(0, name.length() - ".weight".length()), hidden, vocab, false);
        return new LmHead(new Linear(backend, module, backend.weight(w, null, vocab, hidden, false), null, null, null));
    }

    public int vocabSize() {
        return head.module().out();
    }

    /** logits [rows, vocab] of h [rows, hidden]. */
    public void forward(Tensor h, Tensor logits) {
        head.forward(h, logits);
    }
}
