package brm.tokenize;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Map;

/**
 * The reference: the Hugging Face tokenizers Rust library (0.21) through DJL's JNI binding. This
 * class owns DJL start-up: its static initializer turns off DJL's usage tracking and any download
 * before a DJL class loads (surefire sets the same as environment variables), and tokenizers are
 * only ever built from a local file, with DJL's own truncation and padding switched off.
 */
public final class HfReference implements AutoCloseable {
    static {
        System.setProperty("OPT_OUT_TRACKING", "true");
        System.setProperty("RUST_FLAVOR", "cpu");
        System.setProperty("ai.djl.offline", "true");
    }

    private final HuggingFaceTokenizer hf;

    private HfReference(HuggingFaceTokenizer hf) {
        this.hf = hf;
    }

    public static HfReference load(Path tokenizerJson) {
        try {
            return new HfReference(HuggingFaceTokenizer.newInstance(tokenizerJson,
                    Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public int[] encode(String text, boolean addSpecialTokens) {
        return Arrays.stream(hf.encode(text, addSpecialTokens, false).getIds()).mapToInt(Math::toIntExact).toArray();
    }

    String decode(int[] ids, boolean skipSpecialTokens) {
        return hf.decode(Arrays.stream(ids).asLongStream().toArray(), skipSpecialTokens);
    }

    @Override
    public void close() {
        hf.close();
    }

    /** Copies a tokenizer.json shipped in a test-classpath jar to a file (DJL and Tokenizer both read paths). */
    static Path resourceToFile(String resource, Path dir) {
        try (InputStream in = HfReference.class.getResourceAsStream("/" + resource)) {
            if (in == null) throw new IllegalStateException("test classpath lacks " + resource);
            Path file = dir.resolve(resource);
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
