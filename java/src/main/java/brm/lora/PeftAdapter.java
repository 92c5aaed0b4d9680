package brm.lora;

import brm.backbone.LinearModule;
import brm.backbone.ModelConfig;

import brm.BrmException;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.io.SafetensorsWriter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads a PEFT LoRA adapter directory ({@code adapter_config.json} + {@code adapter_model.safetensors})
 * in PEFT's own format and key names, with PEFT's semantics:
 * h = W0·x + s·B(A·x), s = lora_alpha / r, or lora_alpha / √r with {@code use_rslora}.
 *
 * Keys: {@code base_model.model.<module>.lora_A.weight} [r, in], {@code ….lora_B.weight} [out, r], and a
 * saved head {@code base_model.model.score.weight} [1, hidden] (PEFT saves modules_to_save without
 * the wrapper's names). {@code target_modules} as a list matches a module whose path equals an entry or
 * ends with "." + entry; as a string it is a full-match regular expression. Options brm does not
 * implement are refused by name rather than ignored.
 */
public final class PeftAdapter {
    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";
    private static final String PREFIX = "base_model.model.";
    /** The key of a saved reward head (modules_to_save ["score"]). */
    public static final String HEAD = PREFIX + "score.weight";

    /** The key of a LoRA tensor: {@code base_model.model.<module>.lora_<A|B>.weight}. */
    public static String loraKey(String module, String factor) {
        return PREFIX + module + ".lora_" + factor + ".weight";
    }

    private PeftAdapter() {}

    /** The parts of adapter_config.json brm uses. */
    public record Config(int r, double alpha, boolean rsLora, List<String> targetList, Pattern targetRegex) {
        public float scale() {
            return (float) (rsLora ? alpha / Math.sqrt(r) : alpha / r);
        }

        /** PEFT's check_target_module_exists for a plain module path. */
        public boolean targets(String module) {
            if (targetRegex != null) return targetRegex.matcher(module).matches();
            for (String t : targetList) if (module.equals(t) || module.endsWith("." + t)) return true;
            return false;
        }
    }

    /**
     * Writes a LoRA adapter as PEFT saves one for a sequence-classification model: adapter_config.json
     * (task SEQ_CLS, the head under modules_to_save) and adapter_model.safetensors with PEFT's key
     * names (see {@link #loraKey}, {@link #HEAD}), each file atomically. tensors maps keys to [rows, cols].
     */
    public static void write(Path dir, String baseModel, int r, double alpha, double dropout, List<String> targets,
                             Map<String, SafetensorsWriter.Tensor> tensors) {
        ObjectNode config = Jsonl.JSON.createObjectNode();
        config.put("peft_type", "LORA").put("task_type", "SEQ_CLS").put("base_model_name_or_path", baseModel)
                .put("r", r).put("lora_alpha", alpha).put("lora_dropout", dropout);
        targets.forEach(config.putArray("target_modules")::add);
        config.putArray("modules_to_save").add("score");
        config.put("bias", "none").put("fan_in_fan_out", false).put("inference_mode", true).put("init_lora_weights", true)
                .put("use_rslora", false).put("use_dora", false);
        config.putObject("rank_pattern");
        config.putObject("alpha_pattern");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new BrmException(dir + ": cannot create the adapter directory: " + e.getMessage());
        }
        SafetensorsWriter.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
        AtomicFiles.write(dir.resolve(CONFIG), out -> out.write((config.toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8)));
    }

    /** Loads the adapter in {@code dir} for the model that {@code config} describes. */
    public static LoraAdapter load(Path dir, ModelConfig config) {
        return load(dir, config.linearModules(), config.hiddenSize(), config.prefix().substring(0, config.prefix().length() - 1));
    }

    /**
     * Loads the adapter in {@code dir} for a model whose linear layers are {@code modules} and whose
     * hidden width is {@code hidden}; {@code basePrefix} is the model's base-model prefix
     * ({@code gpt_neox}, {@code model}, {@code bert}) so adapters saved from a bare base model also load.
     */
    static LoraAdapter load(Path dir, List<LinearModule> modules, int hidden, String basePrefix) {
        Path configPath = dir.resolve(CONFIG), weightsPath = dir.resolve(WEIGHTS);
        if (!Files.isRegularFile(configPath)) {
            if (Files.exists(dir.resolve("adapter_model.bin")))
                throw new BrmException(dir + ": adapter_model.bin (pickle) is not supported; save the adapter with safetensors (PEFT's default)");
            throw new BrmException(dir + ": no " + CONFIG + " in the adapter directory");
        }
        Config config = readConfig(configPath);
        for (String t : config.targetList())
            if (modules.stream().noneMatch(m -> m.path().equals(t) || m.path().endsWith("." + t)))
                throw new BrmException(configPath + ": target_modules entry \"" + t + "\" names no linear layer of this model");
        Map<String, LinearModule> byPath = new LinkedHashMap<>();
        for (LinearModule m : modules) byPath.put(m.path(), m);

        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        float[] head = null;
        try (SafetensorsFile file = SafetensorsFile.open(weightsPath)) {
            Set<String> seen = new TreeSet<>();
            for (String key : file.tensors().keySet()) {
                if (key.equals(HEAD)) {
                    head = file.floats(key, 1, hidden);
                    continue;
                }
                String module = moduleOf(key);
                if (module == null)
                    throw new BrmException(weightsPath + ": tensor " + key + " is not a LoRA weight (lora_A/lora_B) or the score head; brm does not support it");
                seen.add(resolve(module, byPath, basePrefix, weightsPath, key));
            }
            for (String module : seen) {
                LinearModule linear = byPath.get(module);
                if (!config.targets(module) && !config.targets(stripBase(module, basePrefix)))
                    throw new BrmException(weightsPath + ": has LoRA weights for " + module + ", which target_modules in " + CONFIG + " does not match");
                String stem = keyStem(file, module, basePrefix);
                float[] a = file.floats(stem + ".lora_A.weight", config.r(), linear.in());
                float[] b = file.floats(stem + ".lora_B.weight", linear.out(), config.r());
                layers.put(module, new LoraLayer(module, config.r(), linear.in(), linear.out(), config.scale(), a, b));
            }
            for (LinearModule m : modules)
                if ((config.targets(m.path()) || config.targets(stripBase(m.path(), basePrefix))) && !layers.containsKey(m.path()))
                    throw new BrmException(weightsPath + ": target_modules matches " + m.path() + " but the file has no LoRA weights for it");
        }
        if (layers.isEmpty() && head == null) throw new BrmException(weightsPath + ": no LoRA weights and no score head");
        return new LoraAdapter(layers, head);
    }

    /** The module path of a LoRA key, or null when the key is not lora_A/lora_B. */
    private static String moduleOf(String key) {
        if (!key.startsWith(PREFIX)) return null;
        for (String suffix : new String[] {".lora_A.weight", ".lora_B.weight"})
            if (key.endsWith(suffix)) return key.substring(PREFIX.length(), key.length() - suffix.length());
        return null;
    }

    private static String resolve(String module, Map<String, LinearModule> byPath, String basePrefix, Path file, String key) {
        if (byPath.containsKey(module)) return module;
        String prefixed = basePrefix + "." + module;
        if (byPath.containsKey(prefixed)) return prefixed;
        throw new BrmException(file + ": tensor " + key + " names module " + module + ", which is not a linear layer of this model");
    }

    private static String stripBase(String module, String basePrefix) {
        return module.startsWith(basePrefix + ".") ? module.substring(basePrefix.length() + 1) : module;
    }

    private static String keyStem(SafetensorsFile file, String module, String basePrefix) {
        String stem = PREFIX + module;
        return file.contains(stem + ".lora_A.weight") ? stem : PREFIX + stripBase(module, basePrefix);
    }

    static Config readConfig(Path path) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(path.toFile());
        } catch (IOException e) {
            throw new BrmException(path + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (root == null || !root.isObject()) throw new BrmException(path + ": not a JSON object");
        String type = root.path("peft_type").asText("LORA");
        if (!type.equals("LORA")) throw new BrmException(path + ": peft_type " + type + " is not supported (brm reads LORA adapters)");
        refuseIfSet(path, root, "use_dora", "layers_to_transform", "layers_pattern", "exclude_modules", "rank_pattern",
                "alpha_pattern", "fan_in_fan_out", "lora_bias", "target_parameters", "trainable_token_indices",
                "layer_replication", "megatron_config", "use_qalora", "loftq_config", "eva_config", "corda_config",
                "alora_invocation_tokens", "arrow_config");
        String bias = root.path("bias").asText("none");
        if (!bias.equals("none")) throw new BrmException(path + ": bias \"" + bias + "\" is not supported (only \"none\")");
        JsonNode modulesToSave = root.get("modules_to_save");
        if (modulesToSave != null && !modulesToSave.isNull())
            for (JsonNode m : modulesToSave)
                if (!m.asText().equals("score") && !m.asText().equals("classifier"))
                    throw new BrmException(path + ": modules_to_save entry \"" + m.asText() + "\" is not supported (only the reward head \"score\")");
        int r = root.path("r").asInt(8);
        if (r <= 0) throw new BrmException(path + ": r must be positive, got " + root.get("r"));
        double alpha = root.path("lora_alpha").asDouble(8);
        boolean rs = root.path("use_rslora").asBoolean(false);
        JsonNode targets = root.get("target_modules");
        if (targets == null || targets.isNull()) throw new BrmException(path + ": target_modules is missing");
        if (targets.isTextual()) {
            if (targets.asText().equals("all-linear"))
                throw new BrmException(path + ": target_modules \"all-linear\" is not supported; list the modules");
            try {
                return new Config(r, alpha, rs, List.of(), Pattern.compile(targets.asText()));
            } catch (PatternSyntaxException e) {
                throw new BrmException(path + ": target_modules is not a valid regular expression: " + e.getDescription());
            }
        }
        if (!targets.isArray()) throw new BrmException(path + ": target_modules must be a list or a string");
        List<String> list = new ArrayList<>();
        targets.forEach(t -> list.add(t.asText()));
        return new Config(r, alpha, rs, List.copyOf(list), null);
    }

    private static void refuseIfSet(Path path, JsonNode root, String... fields) {
        for (String f : fields) {
            JsonNode v = root.get(f);
            if (v == null || v.isNull()) continue;
            boolean set = v.isBoolean() ? v.asBoolean() : v.isContainerNode() ? !v.isEmpty() : !(v.isTextual() && v.asText().isEmpty());
            if (set) throw new BrmException(path + ": " + f + " = " + v + " is not supported by brm");
        }
    }
}
