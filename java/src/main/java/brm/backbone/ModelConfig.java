package brm.backbone;

import brm.BrmException;
import brm.backend.Pooling;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The architecture of a Hugging Face model directory, read from its config.json by model_type into
 * one record per architecture, with the defaults of transformers' configuration classes for absent
 * fields. Values brm does not implement are refused by name rather than silently ignored.
 */
public sealed interface ModelConfig permits GptNeoXConfig, LlamaConfig, BertConfig {
    String FILE = "config.json";

    static ModelConfig read(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.isRegularFile(file)) throw new BrmException(file + ": no such file (a model directory needs its config.json)");
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new BrmException(file + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (root == null || !root.isObject()) throw new BrmException(file + ": not a JSON object");
        ConfigFields f = new ConfigFields(file, root);
        String type = f.string("model_type", null);
        if (type == null) throw f.error("missing model_type");
        return switch (type) {
            case "gpt_neox" -> GptNeoXConfig.parse(f);
            case "llama" -> LlamaConfig.parse(f);
            case "bert" -> BertConfig.parse(f);
            default -> throw f.error("model_type " + type + " is not supported (brm supports gpt_neox, llama, bert)");
        };
    }

    /** How the reward head and sentence embeddings read a sequence's hidden states: decoders use the last token. */
    default Pooling pooling() {
        return Pooling.LAST;
    }

    /** Whether sentence embeddings are L2-normalised by default (the encoder family's convention). */
    default boolean normalizeEmbeddings() {
        return false;
    }

    /** Hugging Face's model_type. */
    String modelType();

    /** The base model's attribute in *ForSequenceClassification, with a dot: "gpt_neox.", "model.", "bert.". */
    String prefix();

    /** Decoders attend causally and read the reward at the last token; encoders see the whole sequence. */
    boolean causal();

    int vocabSize();

    int hiddenSize();

    int numLayers();

    int maxPositionEmbeddings();

    /** The std of HF's weight init, used for a fresh reward head. */
    double initializerRange();

    TokenIds tokens();

    /** Every nn.Linear of the *ForSequenceClassification model, in module order, the score head last. */
    List<LinearModule> linearModules();

    /**
     * PEFT's default LoRA target_modules for this architecture (its
     * TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING): what brm train targets without --targets.
     */
    default List<String> defaultLoraTargets() {
        return switch (this) {
            case GptNeoXConfig c -> List.of("query_key_value");
            case LlamaConfig c -> List.of("q_proj", "v_proj");
            case BertConfig c -> List.of("query", "value");
        };
    }

    /** The reward head score [1, hidden], no bias: the last entry of every {@link #linearModules()}. */
    default LinearModule score() {
        return new LinearModule("score", hiddenSize(), 1, false);
    }
}
