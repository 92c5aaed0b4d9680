package brm.train;

import brm.BrmException;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.io.SafetensorsWriter;
import brm.reward.DifferentiableRewardModel.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training checkpoint, one safetensors file written atomically: for each trained tensor K its
 * value under K and AdamW's moments under K.exp_avg and K.exp_avg_sq (FP32, exactly as held), and
 * in the header's metadata the step reached, the loss accumulated towards the next report and the
 * run's settings.
 */
final class TrainState {
    private final long step;
    private final double lossSum;
    private final long lossSteps;
    private final JsonNode settings;
    private final Map<String, float[]> tensors;
    private final Path file;

    private TrainState(Path file, long step, double lossSum, long lossSteps, JsonNode settings, Map<String, float[]> tensors) {
        this.file = file;
        this.step = step;
        this.lossSum = lossSum;
        this.lossSteps = lossSteps;
        this.settings = settings;
        this.tensors = tensors;
    }

    /** lossSum, lossSteps: the training loss summed over the steps since the last report, and their count. */
    static void write(Path file, String key, long step, double lossSum, long lossSteps, ObjectNode settings,
                      List<Parameter> params, float[][] values, AdamW adam) {
        Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            int rows = params.get(i).value().rows(), cols = params.get(i).value().cols();
            String k = params.get(i).key();
            tensors.put(k, new SafetensorsWriter.Tensor(values[i], rows, cols));
            tensors.put(k + ".exp_avg", new SafetensorsWriter.Tensor(adam.firstMoment(i), rows, cols));
            tensors.put(k + ".exp_avg_sq", new SafetensorsWriter.Tensor(adam.secondMoment(i), rows, cols));
        }
        ObjectNode state = Jsonl.JSON.createObjectNode().put("step", step).put("loss_sum", lossSum).put("loss_steps", lossSteps);
        state.set("settings", settings);
        SafetensorsWriter.write(file, tensors, Map.of(key, state.toString()));
    }

    static TrainState read(Path file, String key) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            String text = f.metadata().get(key);
            if (text == null) throw new BrmException(file + ": not a brm training checkpoint (no " + key + " in its metadata)");
            JsonNode state;
            try {
                state = Jsonl.JSON.readTree(text);
            } catch (IOException e) {
                throw new BrmException(file + ": its " + key + " metadata is not valid JSON");
            }
            Map<String, float[]> tensors = new LinkedHashMap<>();
            for (String name : f.tensors().keySet()) tensors.put(name, f.floats(f.info(name)));
            return new TrainState(file, state.path("step").asLong(), state.path("loss_sum").asDouble(), state.path("loss_steps").asLong(),
                    state.path("settings"), tensors);
        }
    }

    long step() {
        return step;
    }

    double lossSum() {
        return lossSum;
    }

    long lossSteps() {
        return lossSteps;
    }

    /** Refuses to resume when any setting (or the data) differs, naming the first that does. */
    void requireSettings(ObjectNode expected, Path where) {
        for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
            var e = it.next();
            JsonNode saved = settings.get(e.getKey());
            if (saved == null || !e.getValue().toString().equals(saved.toString()))
                throw new BrmException(where + ": was written with " + e.getKey() + " = " + saved + ", this run has " + e.getValue()
                        + "; resume with the same settings and data (or train into a new --out)");
        }
    }

    /** values[i] = the saved value of params[i]. */
    void restore(List<Parameter> params, float[][] values) {
        for (int i = 0; i < params.size(); i++) values[i] = tensor(params.get(i).key(), params.get(i).size());
    }

    AdamW optimizer(AdamW.Hyper hyper, List<Parameter> params) {
        float[][] m = new float[params.size()][], v = new float[params.size()][];
        for (int i = 0; i < params.size(); i++) {
            m[i] = tensor(params.get(i).key() + ".exp_avg", params.get(i).size());
            v[i] = tensor(params.get(i).key() + ".exp_avg_sq", params.get(i).size());
        }
        return new AdamW(hyper, m, v, step);
    }

    private float[] tensor(String name, int size) {
        float[] t = tensors.get(name);
        if (t == null) throw new BrmException(file + ": has no tensor " + name);
        if (t.length != size) throw new BrmException(file + ": tensor " + name + " has " + t.length + " values, the model needs " + size);
        return t;
    }
}
