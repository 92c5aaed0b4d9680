package brm.io;

import brm.BrmException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The weights of a Hugging Face model directory: {@code model.safetensors}, or the shards listed by
 * {@code model.safetensors.index.json} ({@code {"weight_map": {tensor: shard file}}}).
 */
public final class ModelWeights implements AutoCloseable {
    public static final String SINGLE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private final Path dir;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byTensor;

    private ModelWeights(Path dir, List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor) {
        this.dir = dir;
        this.files = files;
        this.byTensor = byTensor;
    }

    public static ModelWeights open(Path dir) {
        Path single = dir.resolve(SINGLE), index = dir.resolve(INDEX);
        List<SafetensorsFile> files = new ArrayList<>();
        Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
        try {
            if (Files.exists(single)) {
                SafetensorsFile f = SafetensorsFile.open(single);
                files.add(f);
                for (String name : f.tensors().keySet()) byTensor.put(name, f);
            } else if (Files.exists(index)) {
                JsonNode map;
                try {
                    map = new ObjectMapper().readTree(index.toFile()).get("weight_map");
                } catch (IOException e) {
                    throw new BrmException(index + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
                }
                if (map == null || !map.isObject()) throw new BrmException(index + ": no weight_map object");
                Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
                for (var it = map.fields(); it.hasNext(); ) {
                    var e = it.next();
                    String shard = e.getValue().asText();
                    if (shard.contains("/") || shard.contains("\\"))
                        throw new BrmException(index + ": shard name " + shard + " must be a file in the model directory");
                    SafetensorsFile f = shards.get(shard);
                    if (f == null) {
                        f = SafetensorsFile.open(dir.resolve(shard));
                        shards.put(shard, f);
                        files.add(f);
                    }
                    if (!f.contains(e.getKey()))
                        throw new BrmException(index + ": lists tensor " + e.getKey() + " in " + shard + ", which does not have it");
                    byTensor.put(e.getKey(), f);
                }
            } else {
                throw new BrmException(dir + ": no " + SINGLE + " or " + INDEX + " in the model directory");
            }
        } catch (RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
        return new ModelWeights(dir, files, Collections.unmodifiableMap(byTensor));
    }

    public Path dir() {
        return dir;
    }

    public Set<String> names() {
        return byTensor.keySet();
    }

    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    public SafetensorsFile.TensorInfo info(String name) {
        return file(name).info(name);
    }

    /** Tensor {@code name} as FP32, checked against {@code shape}; a clear error names the file and tensor. */
    public float[] floats(String name, long... shape) {
        return file(name).floats(name, shape);
    }

    private SafetensorsFile file(String name) {
        SafetensorsFile f = byTensor.get(name);
        if (f == null) throw new BrmException(dir + ": missing tensor " + name);
        return f;
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
