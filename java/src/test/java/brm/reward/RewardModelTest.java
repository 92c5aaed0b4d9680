package brm.reward;

import brm.BrmException;
import brm.io.SafetensorsFile;
import brm.io.SafetensorsWriter;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weight naming, the fresh reward head, and refusals of bad input. */
class RewardModelTest {
    @TempDir
    Path tmp;

    private static RewardModel.Options options(OptionalLong seed) {
        return new RewardModel.Options(1, 4096, seed);
    }

    private static float[] score(Path dir, OptionalLong seed, List<int[]> sequences) {
        try (RewardModel m = RewardModel.open(dir, null, options(seed))) {
            return m.score(sequences);
        }
    }

    /** A copy of a fixture with its tensors renamed (a null name drops the tensor), stored as F32. */
    private Path rewritten(String fixture, UnaryOperator<String> rename) throws IOException {
        return rewritten(fixture, rename, Map.of());
    }

    /** ... and with the tensors named in reshape given that shape (same values). */
    private Path rewritten(String fixture, UnaryOperator<String> rename, Map<String, long[]> reshape) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(fixture + "-" + System.nanoTime()));
        Files.copy(Fixtures.dir(fixture).resolve("config.json"), dir.resolve("config.json"));
        Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir(fixture).resolve("model.safetensors"))) {
            for (var t : f.tensors().values()) {
                String name = rename.apply(t.name());
                if (name != null) tensors.put(name, new SafetensorsWriter.Tensor(f.floats(t), reshape.getOrDefault(name, t.shape())));
            }
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of());
        return dir;
    }

    private static BrmException refused(Runnable r, String... fragments) {
        BrmException e = assertThrows(BrmException.class, r::run);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' lacks '" + f + "'");
        return e;
    }

    /** GPTNeoXModel / LlamaModel / BertModel checkpoints save without the base-model prefix. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_parallel", "llama_gqa", "bert_mean"})
    void bareBaseModelNamesLoadLikePrefixedOnes(String fixture) throws IOException {
        String prefix = switch (fixture) {
            case "gpt_neox_parallel" -> "gpt_neox.";
            case "llama_gqa" -> "model.";
            default -> "bert.";
        };
        Path bare = rewritten(fixture, n -> n.startsWith(prefix) ? n.substring(prefix.length()) : n);
        List<int[]> sequences = Fixtures.sequences(Fixtures.expected(fixture));
        assertArrayEquals(score(Fixtures.dir(fixture), OptionalLong.empty(), sequences), score(bare, OptionalLong.empty(), sequences));
        if (!fixture.startsWith("bert"))
            try (CausalLM a = CausalLM.open(Fixtures.dir(fixture), null, 1); CausalLM b = CausalLM.open(bare, null, 1)) {
                assertArrayEquals(a.lastLogits(sequences.getFirst()), b.lastLogits(sequences.getFirst()));
            }
    }

    /** attention_bias and mlp_bias (supported as in HF) load q/k/v/o and gate/up/down biases: zero ones change nothing. */
    @Test
    void llamaBiasesAreReadWhenTheConfigAsksForThem() throws IOException {
        Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
        Path dir = Fixtures.dir("llama_gqa");
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            for (var t : f.tensors().values()) {
                tensors.put(t.name(), new SafetensorsWriter.Tensor(f.floats(t), t.shape()));
                if (t.name().matches("model\\.layers\\.\\d+\\.(self_attn|mlp)\\..*_proj\\.weight"))
                    tensors.put(t.name().replace(".weight", ".bias"), new SafetensorsWriter.Tensor(new float[(int) t.shape()[0]], t.shape()[0]));
            }
        }
        Path biased = Files.createDirectories(tmp.resolve("biased"));
        var config = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        Files.writeString(biased.resolve("config.json"), config.put("attention_bias", true).put("mlp_bias", true).toString());
        SafetensorsWriter.write(biased.resolve("model.safetensors"), tensors, Map.of());
        List<int[]> sequences = Fixtures.sequences(Fixtures.expected("llama_gqa"));
        assertArrayEquals(score(dir, OptionalLong.empty(), sequences), score(biased, OptionalLong.empty(), sequences));
        tensors.remove("model.layers.1.mlp.up_proj.bias");
        SafetensorsWriter.write(biased.resolve("model.safetensors"), tensors, Map.of());
        refused(() -> score(biased, OptionalLong.empty(), sequences), "model.layers.1.mlp.up_proj.bias");
    }

    @Test
    void missingScoreHeadNeedsASeedAndTheSeedDeterminesTheHead() throws IOException {
        Path headless = rewritten("gpt_neox_parallel", n -> n.equals("score.weight") ? null : n);
        List<int[]> sequences = Fixtures.sequences(Fixtures.expected("gpt_neox_parallel"));
        refused(() -> score(headless, OptionalLong.empty(), sequences), headless.toString(), "has no score.weight; pass --init-head SEED");
        float[] seven = score(headless, OptionalLong.of(7), sequences);
        assertArrayEquals(seven, score(headless, OptionalLong.of(7), sequences));
        assertArrayEquals(seven, score(Fixtures.dir("gpt_neox_parallel"), OptionalLong.of(7), sequences), "the seed, not the directory, gives the head");
        float[] eight = score(headless, OptionalLong.of(8), sequences);
        for (int i = 0; i < seven.length; i++) assertTrue(seven[i] != eight[i], "seeds 7 and 8 give the same reward for sequence " + i);
    }

    @Test
    void badSequencesAreRefusedByName() {
        Path dir = Fixtures.dir("gpt_neox_parallel");
        try (RewardModel m = RewardModel.open(dir, null, options(OptionalLong.empty()))) {
            refused(() -> m.score(List.of(new int[]{1, 2}, new int[0])), "sequence 1 is empty");
            refused(() -> m.score(List.of(new int[65])), "sequence 0 has 65 tokens", "max_position_embeddings 64");
            refused(() -> m.score(List.of(new int[]{3, 96})), "token id 96 at position 1", "vocab_size 96");
            refused(() -> m.score(List.of(new int[]{-1})), "token id -1");
            assertFalse(Float.isNaN(m.score(List.of(new int[64]))[0]), "max_position_embeddings tokens are accepted");
        }
        try (CausalLM lm = CausalLM.open(dir, null, 1)) {
            refused(() -> lm.lastLogits(new int[0]), "sequence 0 is empty");
        }
    }

    @Test
    void missingOrMisshapenTensorsAreRefusedByName() throws IOException {
        Path missing = rewritten("llama_gqa", n -> n.equals("model.layers.1.mlp.down_proj.weight") ? null : n);
        refused(() -> score(missing, OptionalLong.empty(), List.of(new int[]{1})), missing.toString(), "model.layers.1.mlp.down_proj.weight");
        Path noLmHead = rewritten("llama_gqa", n -> n.equals("lm_head.weight") ? null : n);
        refused(() -> CausalLM.open(noLmHead, null, 1), "lm_head.weight");
        Path misshapen = rewritten("bert_cls", n -> n, Map.of("bert.encoder.layer.0.attention.self.key.weight", new long[]{32, 16, 2}));
        refused(() -> score(misshapen, OptionalLong.empty(), List.of(new int[]{1})), "bert.encoder.layer.0.attention.self.key.weight", "expected [32, 32]");
    }

    @Test
    void adapterMustTargetLinearsOfTheModel() {
        Path dir = Fixtures.dir("gpt_neox_parallel");
        LoraLayer stray = new LoraLayer("gpt_neox.layers.0.mlp.act", 1, 32, 32, 1f, new float[32], new float[32]);
        refused(() -> RewardModel.open(dir, new LoraAdapter(Map.of(stray.module(), stray), null), options(OptionalLong.empty())),
                "gpt_neox.layers.0.mlp.act", "not a linear layer");
        LoraLayer wrong = new LoraLayer("gpt_neox.layers.0.attention.dense", 1, 32, 16, 1f, new float[32], new float[16]);
        refused(() -> RewardModel.open(dir, new LoraAdapter(Map.of(wrong.module(), wrong), null), options(OptionalLong.empty())),
                "gpt_neox.layers.0.attention.dense", "32 -> 16");
    }

    @Test
    void encodersHaveNoNextTokenLogits() {
        refused(() -> CausalLM.open(Fixtures.dir("bert_mean"), null, 1), "bert is an encoder");
    }

    @Test
    void linearModulesUseSequenceClassificationPaths() {
        try (RewardModel m = RewardModel.open(Fixtures.dir("bert_cls"), null, options(OptionalLong.empty()))) {
            var paths = m.linearModules().stream().map(l -> l.path()).toList();
            assertTrue(paths.contains("bert.encoder.layer.0.attention.self.query"), paths.toString());
            assertTrue(paths.contains("bert.encoder.layer.1.attention.output.dense"), paths.toString());
            assertTrue(paths.contains("bert.encoder.layer.1.output.dense"), paths.toString());
            assertTrue(paths.getLast().equals("score"), paths.toString());
        }
    }
}
