package brm.lora;

/** An nn.Linear of a model that LoRA may target: its module path, input and output widths. */
public record LinearModule(String path, int in, int out) {}
