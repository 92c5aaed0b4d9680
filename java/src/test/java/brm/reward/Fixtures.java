package brm.reward;

import brm.io.SafetensorsFile;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The PyTorch reference fixtures of src/test/resources/fixtures (written by src/test/python/make_fixtures.py). */
public final class Fixtures {
    private Fixtures() {}

    public static final List<String> ALL = List.of("gpt_neox_parallel", "gpt_neox_sequential", "llama_gqa", "llama_tied", "bert_mean", "bert_cls");
    static final List<String> DECODERS = List.of("gpt_neox_parallel", "gpt_neox_sequential", "llama_gqa", "llama_tied");

    public static Path dir(String name) {
        try {
            var url = Fixtures.class.getResource("/fixtures/" + name + "/config.json");
            if (url == null) throw new IllegalStateException("fixture " + name + " is not on the test classpath");
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static JsonNode expected(String name) {
        try {
            return new ObjectMapper().readTree(dir(name).resolve("expected.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static List<int[]> sequences(JsonNode expected) {
        List<int[]> out = new ArrayList<>();
        for (JsonNode s : expected.get("sequences")) {
            int[] ids = new int[s.size()];
            for (int i = 0; i < ids.length; i++) ids[i] = s.get(i).asInt();
            out.add(ids);
        }
        return out;
    }

    /** All numbers of a (nested) JSON array, flattened in order. */
    public static double[] flat(JsonNode node) {
        List<Double> values = new ArrayList<>();
        collect(node, values);
        return values.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static void collect(JsonNode node, List<Double> values) {
        if (node.isArray()) node.forEach(n -> collect(n, values));
        else values.add(node.asDouble());
    }

    public static boolean hasAdapter(String name) {
        return Files.exists(dir(name).resolve("adapter/adapter_model.safetensors"));
    }

    /**
     * The fixture's PEFT adapter read directly: base_model.model.PATH.lora_A.weight [r, in] and
     * .lora_B.weight [out, r] per module, scale lora_alpha/r (/√r with use_rslora), and the score head
     * PEFT saves for modules_to_save as base_model.model.score.weight.
     */
    static LoraAdapter adapter(String name) {
        Path dir = dir(name).resolve("adapter");
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
            JsonNode config = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
            int r = config.get("r").asInt();
            double alpha = config.get("lora_alpha").asDouble();
            float scale = (float) (config.path("use_rslora").asBoolean(false) ? alpha / Math.sqrt(r) : alpha / r);
            String prefix = "base_model.model.", suffixA = ".lora_A.weight";
            Map<String, LoraLayer> layers = new HashMap<>();
            for (String key : f.tensors().keySet()) {
                if (!key.endsWith(suffixA)) continue;
                String module = key.substring(prefix.length(), key.length() - suffixA.length());
                var a = f.info(key);
                var b = f.info(prefix + module + ".lora_B.weight");
                layers.put(module, new LoraLayer(module, r, (int) a.shape()[1], (int) b.shape()[0], scale, f.floats(a), f.floats(b)));
            }
            float[] score = f.contains(prefix + "score.weight") ? f.floats(f.info(prefix + "score.weight")) : null;
            return new LoraAdapter(layers, score);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** max over i of |actual - expected| / max(|expected|, floor). */
    public static double maxRelError(float[] actual, double[] expected, double floor) {
        if (actual.length != expected.length) throw new AssertionError(actual.length + " values, expected " + expected.length);
        double max = 0;
        for (int i = 0; i < actual.length; i++)
            max = Math.max(max, Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor));
        return max;
    }
}
