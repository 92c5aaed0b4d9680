package brm.train;

import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.CpuBackend;
import brm.backend.CudaParity;
import brm.backend.ReferenceBackend;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.lora.PeftAdapter;
import brm.reward.DifferentiableRewardModel;
import brm.reward.DifferentiableRewardModel.Parameter;
import brm.reward.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Bradley–Terry loss and its gradients for every LoRA factor and the head against PyTorch
 * autograd in float64 (make_fixtures.py's *_train cases: nonzero LoRA on several modules, an
 * adapter head, per-pair margins, center-rewards and score-l2), on the reference backend (float64
 * inside, rewards and their gradients exchanged as float32: 1e-6), the CPU backend (float32: 1e-4) and the
 * CUDA backend (float32 kernels, on the emulator where there is no GPU: 1e-4).
 */
class TrainingFixtureTest {
    @ParameterizedTest
    @CsvSource({
            "gpt_neox_parallel_train, reference, 1e-6", "llama_gqa_train, reference, 1e-6", "bert_mean_train, reference, 1e-6",
            "gpt_neox_parallel_train, cpu, 1e-4", "llama_gqa_train, cpu, 1e-4", "bert_mean_train, cpu, 1e-4",
            "gpt_neox_parallel_train, cuda, 1e-4", "llama_gqa_train, cuda, 1e-4", "bert_mean_train, cuda, 1e-4"})
    void lossAndGradientsMatchAutograd(String name, String backendName, double tolerance) {
        Path dir = Fixtures.dir(name);
        JsonNode expected = Fixtures.expected(name);
        List<int[]> sequences = new ArrayList<>();
        List<Float> margins = new ArrayList<>();
        try (Jsonl.Reader r = Jsonl.Reader.open(dir.resolve("pairs.jsonl"))) {
            for (Jsonl.Line l = r.next(); l != null; l = r.next()) {
                sequences.add(ids(l.value().get("chosen_ids")));
                sequences.add(ids(l.value().get("rejected_ids")));
                margins.add((float) l.value().get("margin").asDouble());
            }
        }
        int pairs = margins.size();
        float[] m = new float[pairs];
        for (int i = 0; i < pairs; i++) m[i] = margins.get(i);
        Backend backend = switch (backendName) {
            case "cpu" -> new CpuBackend(2);
            case "cuda" -> CudaParity.backend();
            default -> new ReferenceBackend();
        };
        var adapter = PeftAdapter.load(dir.resolve("adapter"), ModelConfig.read(dir));
        try (var model = DifferentiableRewardModel.open(dir, adapter, backend, OptionalLong.empty(), 0f)) {
            for (var loss : List.of(new Case("full", new BradleyTerry(expected.get("C").asDouble(), expected.get("beta").asDouble()), m, "grads.safetensors"),
                    new Case("plain", new BradleyTerry(0, 0), null, "grads_plain.safetensors"))) {
                float[] rewards = model.forward(sequences), dRewards = new float[rewards.length];
                double value = loss.bt.lossAndGradient(rewards, loss.margins, 1.0 / pairs, dRewards);
                assertEquals(expected.get("loss_" + loss.name).asDouble(), value, 1e-6, name + " loss_" + loss.name);
                model.zeroGradients();
                model.backward(dRewards);
                double worst = 0;
                try (SafetensorsFile grads = SafetensorsFile.open(dir.resolve(loss.file))) {
                    assertEquals(grads.tensors().size(), model.parameters().size(), "every adapter tensor has a gradient");
                    for (Parameter p : model.parameters()) {
                        float[] want = grads.floats(grads.info(p.key())), got = backend.download(p.gradient());
                        double scale = 0, error = 0;
                        for (int i = 0; i < want.length; i++) {
                            scale = Math.max(scale, Math.abs(want[i]));
                            error = Math.max(error, Math.abs(got[i] - want[i]));
                        }
                        worst = Math.max(worst, error / scale);
                        assertTrue(error <= tolerance * scale, name + " " + backendName + " " + p.key() + ": max error " + error + " of scale " + scale);
                    }
                }
                System.out.printf("%-24s %-9s %-5s loss %.10f, worst gradient error %.2e%n", name, backendName, loss.name, value, worst);
            }
        }
    }

    private record Case(String name, BradleyTerry bt, float[] margins, String file) {}

    private static int[] ids(JsonNode a) {
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = a.get(i).asInt();
        return ids;
    }
}
