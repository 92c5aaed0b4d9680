package brm.backbone;

import brm.BrmException;
import brm.backend.Pooling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** config.json parsing: transformers' defaults for absent fields, and refusals that name the field. */
class ModelConfigTest {
    @TempDir
    Path tmp;

    private ModelConfig read(String json) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "model");
        Files.writeString(dir.resolve("config.json"), json);
        return ModelConfig.read(dir);
    }

    private void refused(String json, String... fragments) {
        BrmException e = assertThrows(BrmException.class, () -> read(json));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' lacks '" + f + "'");
    }

    @Test
    void gptNeoXDefaults() throws IOException {
        var c = assertInstanceOf(GptNeoXConfig.class, read("""
                {"model_type": "gpt_neox", "vocab_size": 50, "hidden_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "intermediate_size": 256}"""));
        assertEquals(new GptNeoXConfig(50, 64, 2, 4, 256, 0.25, 10000, 2048, 1e-5, true, true, false, 0.02,
                new TokenIds(OptionalInt.of(0), List.of(2), OptionalInt.empty())), c);
        assertEquals(16, c.headDim());
        assertEquals(4, c.rotaryDims());
        assertTrue(c.causal());
    }

    @Test
    void gptNeoXTransformers5RopeParameters() throws IOException {
        var c = (GptNeoXConfig) read("""
                {"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": 4, "eos_token_id": [0, 3],
                 "rope_parameters": {"rope_type": "default", "rope_theta": 5000.0, "partial_rotary_factor": 0.5}}""");
        assertEquals(5000, c.rotaryBase());
        assertEquals(8, c.rotaryDims());
        assertEquals(List.of(0, 3), c.tokens().eos());
    }

    @Test
    void llamaDefaultsAndGqa() throws IOException {
        var c = assertInstanceOf(LlamaConfig.class, read("""
                {"model_type": "llama", "vocab_size": 10, "hidden_size": 64, "intermediate_size": 128,
                 "num_hidden_layers": 1, "num_attention_heads": 4, "bos_token_id": null}"""));
        assertEquals(new LlamaConfig(10, 64, 128, 1, 4, 4, 16, 1e-6, 10000, 2048, false, false, false, 0.02,
                new TokenIds(OptionalInt.empty(), List.of(2), OptionalInt.empty())), c);
        var gqa = (LlamaConfig) read("""
                {"model_type": "llama", "hidden_size": 48, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 10,
                 "num_hidden_layers": 1, "intermediate_size": 64, "rope_theta": 500000.0, "rope_scaling": null}""");
        assertEquals(10, gqa.headDim());
        assertEquals(500000, gqa.ropeTheta());
        assertEquals(new LinearModule("model.layers.0.self_attn.k_proj", 48, 20, false), gqa.linearModules().get(1));
        assertEquals(new LinearModule("model.layers.0.self_attn.o_proj", 40, 48, false), gqa.linearModules().get(3));
    }

    @Test
    void bertDefaultsAndPooling() throws IOException {
        var c = assertInstanceOf(BertConfig.class, read("""
                {"model_type": "bert", "vocab_size": 30, "hidden_size": 32, "num_hidden_layers": 1,
                 "num_attention_heads": 2, "intermediate_size": 64}"""));
        assertEquals(new BertConfig(30, 32, 1, 2, 64, 512, 2, 1e-12, 0.02, Pooling.MEAN, false,
                new TokenIds(OptionalInt.empty(), List.of(), OptionalInt.of(0))), c);
        assertEquals(Pooling.FIRST, ((BertConfig) read("{\"model_type\": \"bert\", \"pooling\": \"cls\"}")).pooling());
    }

    @Test
    void linearModulesFollowTheSequenceClassificationModel() throws IOException {
        var modules = read("""
                {"model_type": "gpt_neox", "hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 2,
                 "intermediate_size": 128, "attention_bias": false}""").linearModules();
        assertEquals(9, modules.size());
        assertEquals(new LinearModule("gpt_neox.layers.0.attention.query_key_value", 32, 96, false), modules.get(0));
        assertEquals(new LinearModule("gpt_neox.layers.1.mlp.dense_4h_to_h", 128, 32, true), modules.get(7));
        assertEquals(new LinearModule("score", 32, 1, false), modules.get(8));
    }

    @Test
    void unsupportedValuesAreRefusedByName() {
        refused("{\"model_type\": \"gpt2\"}", "model_type gpt2 is not supported");
        refused("{\"hidden_size\": 8}", "missing model_type");
        refused("{\"model_type\": \"llama\", \"hidden_act\": \"gelu\"}", "hidden_act gelu is not supported");
        refused("{\"model_type\": \"gpt_neox\", \"hidden_act\": \"gelu_new\"}", "hidden_act gelu_new");
        refused("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}", "rope_scaling", "llama3");
        refused("{\"model_type\": \"gpt_neox\", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}", "rope_scaling");
        refused("{\"model_type\": \"bert\", \"position_embedding_type\": \"relative_key\"}", "position_embedding_type relative_key");
        refused("{\"model_type\": \"bert\", \"pooling\": \"max\"}", "pooling max is not supported");
        refused("{\"model_type\": \"bert\", \"is_decoder\": true}", "is_decoder");
        refused("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_key_value_heads\": 3}", "num_key_value_heads 3");
        refused("{\"model_type\": \"gpt_neox\", \"hidden_size\": 60, \"num_attention_heads\": 8}", "hidden_size 60");
        refused("{\"model_type\": \"gpt_neox\", \"hidden_size\": \"big\"}", "hidden_size must be a positive integer");
        refused("{\"model_type\": \"gpt_neox\", \"hidden_size\": 24, \"num_attention_heads\": 2}", "rotary dims 3");
        refused("{\"model_type\": \"bert\"", "not valid JSON");
    }
}
