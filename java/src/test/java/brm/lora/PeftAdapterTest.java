package brm.lora;

import brm.backbone.LinearModule;

import brm.BrmException;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.io.SafetensorsWriter;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PEFT adapters written by the PyTorch fixture generator (PEFT's own format) load with PEFT's semantics. */
class PeftAdapterTest {
    static final Path FIXTURES = Path.of("src/test/resources/fixtures");

    @TempDir
    Path tmp;

    /** The linear layers of a fixture model, read off its weights: every 2-D ".weight" but embeddings and heads. */
    static List<LinearModule> linears(Path model) {
        List<LinearModule> out = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(model.resolve("model.safetensors"))) {
            f.tensors().values().forEach(t -> {
                String n = t.name();
                if (t.shape().length == 2 && n.endsWith(".weight") && !n.contains("embed") && !n.startsWith("score")
                        && !n.startsWith("lm_head"))
                    out.add(new LinearModule(n.substring(0, n.length() - ".weight".length()), (int) t.shape()[1], (int) t.shape()[0], false));
            });
        }
        return out;
    }

    static String basePrefix(String fixture) {
        return fixture.startsWith("gpt_neox") ? "gpt_neox" : fixture.startsWith("llama") ? "model" : "bert";
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_parallel", "gpt_neox_sequential", "llama_gqa", "llama_tied", "bert_mean"})
    void loadsFixtureAdaptersExactly(String fixture) throws IOException {
        Path model = FIXTURES.resolve(fixture), adir = model.resolve("adapter");
        var config = Jsonl.JSON.readTree(adir.resolve(PeftAdapter.CONFIG).toFile());
        int r = config.get("r").asInt();
        double alpha = config.get("lora_alpha").asDouble();
        float scale = (float) (config.path("use_rslora").asBoolean() ? alpha / Math.sqrt(r) : alpha / r);
        int hidden = Jsonl.JSON.readTree(model.resolve("config.json").toFile()).get("hidden_size").asInt();
        LoraAdapter adapter = PeftAdapter.load(adir, linears(model), hidden, basePrefix(fixture));
        try (SafetensorsFile raw = SafetensorsFile.open(adir.resolve(PeftAdapter.WEIGHTS))) {
            long loraTensors = raw.tensors().keySet().stream().filter(k -> k.contains(".lora_")).count();
            assertEquals(loraTensors, 2L * adapter.layers().size());
            for (LoraLayer layer : adapter.layers().values()) {
                String stem = "base_model.model." + layer.module();
                assertArrayEquals(raw.floats(raw.info(stem + ".lora_A.weight")), layer.a());
                assertArrayEquals(raw.floats(raw.info(stem + ".lora_B.weight")), layer.b());
                assertEquals(scale, layer.scale());
                assertEquals(r, layer.r());
            }
            if (raw.contains("base_model.model.score.weight"))
                assertArrayEquals(raw.floats(raw.info("base_model.model.score.weight")), adapter.scoreWeight());
            else
                assertNull(adapter.scoreWeight());
        }
        if (fixture.equals("gpt_neox_sequential")) {
            // target "dense" is attention.dense, never the MLP's dense_h_to_4h / dense_4h_to_h
            assertTrue(adapter.layers().keySet().stream().anyMatch(m -> m.endsWith("attention.dense")));
            assertTrue(adapter.layers().keySet().stream().noneMatch(m -> m.contains("dense_")));
        }
        if (fixture.equals("llama_tied")) assertNotNull(adapter.scoreWeight());
    }

    @Test
    void listMatchingFollowsPeft() {
        var list = new PeftAdapter.Config(4, 8, false, List.of("dense", "query_key_value"), null);
        assertTrue(list.targets("gpt_neox.layers.0.attention.dense"));
        assertTrue(list.targets("dense"));
        assertTrue(!list.targets("gpt_neox.layers.0.mlp.dense_h_to_4h"));
        assertTrue(!list.targets("gpt_neox.layers.0.attention.xdense"));
        var regex = new PeftAdapter.Config(4, 8, true, List.of(), java.util.regex.Pattern.compile(".*\\.(q|v)_proj"));
        assertTrue(regex.targets("model.layers.3.self_attn.q_proj"));
        assertTrue(!regex.targets("model.layers.3.self_attn.q_proj.x"));
        assertEquals(4f, regex.scale());
        assertEquals(2f, list.scale());
    }

    /** A copy of a fixture adapter with its config edited. */
    Path editedCopy(String fixture, String field, Object value) throws IOException {
        Path src = FIXTURES.resolve(fixture).resolve("adapter"), dst = Files.createTempDirectory(tmp, "adapter");
        Files.copy(src.resolve(PeftAdapter.WEIGHTS), dst.resolve(PeftAdapter.WEIGHTS));
        ObjectNode config = (ObjectNode) Jsonl.JSON.readTree(src.resolve(PeftAdapter.CONFIG).toFile());
        config.set(field, Jsonl.JSON.valueToTree(value));
        Files.writeString(dst.resolve(PeftAdapter.CONFIG), config.toString());
        return dst;
    }

    void assertRefused(Path adir, String fixture, String fragment) {
        Path model = FIXTURES.resolve(fixture);
        var e = assertThrows(BrmException.class, () -> PeftAdapter.load(adir, linears(model), 48, basePrefix(fixture)));
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    @Test
    void unsupportedOptionsAreRefusedByName() throws IOException {
        assertRefused(editedCopy("gpt_neox_sequential", "use_dora", true), "gpt_neox_sequential", "use_dora");
        assertRefused(editedCopy("gpt_neox_sequential", "rank_pattern", Map.of("dense", 2)), "gpt_neox_sequential", "rank_pattern");
        assertRefused(editedCopy("gpt_neox_sequential", "layers_to_transform", List.of(0)), "gpt_neox_sequential", "layers_to_transform");
        assertRefused(editedCopy("gpt_neox_sequential", "peft_type", "IA3"), "gpt_neox_sequential", "peft_type IA3");
        assertRefused(editedCopy("gpt_neox_sequential", "bias", "all"), "gpt_neox_sequential", "bias");
        // weights for a module that target_modules does not name
        assertRefused(editedCopy("gpt_neox_sequential", "target_modules", List.of("query_key_value")), "gpt_neox_sequential", "does not match");
        // a target that matches modules the file has no weights for
        assertRefused(editedCopy("gpt_neox_sequential", "target_modules", List.of("query_key_value", "dense", "dense_h_to_4h")),
                "gpt_neox_sequential", "no LoRA weights for");
        // a target entry naming a module this model does not have
        Path adir = FIXTURES.resolve("gpt_neox_sequential/adapter");
        List<Object> targets = new ArrayList<>();
        Jsonl.JSON.readTree(adir.resolve(PeftAdapter.CONFIG).toFile()).get("target_modules").forEach(t -> targets.add(t.asText()));
        targets.add("q_proj");
        assertRefused(editedCopy("gpt_neox_sequential", "target_modules", targets), "gpt_neox_sequential", "target_modules entry \"q_proj\" names no linear layer");
        // rank in the config disagrees with the tensors
        assertRefused(editedCopy("gpt_neox_sequential", "r", 3), "gpt_neox_sequential", "lora_A.weight has shape");
        assertRefused(tmp.resolve("missing"), "gpt_neox_sequential", "no adapter_config.json");
    }

    @Test
    void unknownTensorsAreRefusedByName() throws IOException {
        Path adir = editedCopy("gpt_neox_sequential", "r", 2);
        Random random = new Random();
        float[] junk = new float[4];
        for (int i = 0; i < junk.length; i++) junk[i] = (float) random.nextGaussian();
        SafetensorsWriter.write(adir.resolve(PeftAdapter.WEIGHTS), Map.of("base_model.model.gpt_neox.embed_in.weight",
                new SafetensorsWriter.Tensor(junk, 2, 2)), null);
        assertRefused(adir, "gpt_neox_sequential", "gpt_neox.embed_in.weight is not a LoRA weight");
    }
}
