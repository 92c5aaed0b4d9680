package brm.backbone;

/**
 * One nn.Linear of a model, W [out, in] (+ bias [out]), named by its module path in the Hugging Face
 * *ForSequenceClassification model, e.g. {@code gpt_neox.layers.0.attention.query_key_value}: the
 * names PEFT's target_modules match.
 */
public record LinearModule(String path, int in, int out, boolean bias) {}
