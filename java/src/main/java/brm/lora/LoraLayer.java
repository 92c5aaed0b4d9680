package brm.lora;

/**
 * The low-rank update of one linear layer, PEFT semantics:
 * h = W0·x + scale · B·(A·x), with A [r, in], B [out, r], scale = lora_alpha / r (or / √r with rsLoRA).
 *
 * @param module the module's path in the *ForSequenceClassification model, e.g.
 *               {@code gpt_neox.layers.0.attention.query_key_value}
 */
public record LoraLayer(String module, int r, int in, int out, float scale, float[] a, float[] b) {
    public LoraLayer {
        if (a.length != r * in) throw new IllegalArgumentException(module + ": lora_A has " + a.length + " values, not " + r + "x" + in);
        if (b.length != out * r) throw new IllegalArgumentException(module + ": lora_B has " + b.length + " values, not " + out + "x" + r);
    }
}
