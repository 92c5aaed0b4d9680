package brm.bon;

import brm.BrmException;
import brm.backbone.ModelConfig;
import brm.batch.Template;
import brm.batch.TextRules;
import brm.batch.Truncation;
import brm.reward.SentenceEncoder;
import brm.tokenize.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The default world's gold reward: a fixed, deterministic judge made of a trained sentence encoder and two
 * descriptions, one of the stories we want and one of those we do not.
 * <pre>
 *   e(t)      = pool(h(t)) / ‖pool(h(t))‖₂             the encoder's sentence embedding of text t [hidden]
 *                                                       (pooling as config.json records it: bge-small-en-v1.5 CLS)
 *   sentiment = cos(e(r), e(pos)) − cos(e(r), e(neg))   on the response r alone
 *   relevance = cos(e(r), e(p))                          the response against its prompt p
 *   gold      = w_s · sentiment + w_r · relevance        (defaults w_s = 1, w_r = 2)
 * </pre>
 * cos(a, b) = a · b for unit vectors. A text is tokenized with the encoder's special tokens around it and cut on the
 * right at the encoder's position limit. Each distinct prompt is embedded once and kept. Not thread-safe.
 */
public final class EmbeddingGold implements AutoCloseable {
    public static final String POSITIVE = "A happy, kind story where friends help each other, share, smile and feel joy.";
    public static final String NEGATIVE = "A sad, mean story where someone is cruel, cries, and feels hurt and alone.";

    public record Settings(String positive, String negative, double sentimentWeight, double relevanceWeight) {
        public static final Settings DEFAULT = new Settings(POSITIVE, NEGATIVE, 1, 2);
    }

    /** One sample to judge; {@code where} (file:line) names it in errors. */
    public record Sample(String prompt, String response, String where) {}

    /** The reward and its two unweighted terms. */
    public record Gold(double gold, double sentiment, double relevance) {}

    private final SentenceEncoder encoder;
    private final Tokenizer tokenizer;
    private final TextRules.Specials specials;
    private final TextRules rules;
    private final Settings settings;
    private final float[] positive, negative;                     // [hidden], unit length
    private final Map<String, float[]> prompts = new HashMap<>(); // prompt text -> e(prompt) [hidden]
    private long tokens;

    private EmbeddingGold(SentenceEncoder encoder, Tokenizer tokenizer, Settings settings) {
        this.encoder = encoder;
        this.tokenizer = tokenizer;
        this.specials = TextRules.Specials.of(tokenizer);
        this.rules = new TextRules(Template.NONE, false, encoder.config().maxPositionEmbeddings(), Truncation.RIGHT, -1);
        this.settings = settings;
        float[][] e = encoder.embed(List.of(ids(settings.positive(), "--positive"), ids(settings.negative(), "--negative")), true);
        this.positive = e[0];
        this.negative = e[1];
    }

    /** Loads the encoder directory (config.json, model.safetensors, tokenizer.json); batchSize sequences of at most the position limit per pass. */
    public static EmbeddingGold open(Path encoderDir, Settings settings, int threads, int batchSize) {
        Path tokenizerJson = encoderDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerJson)) throw new BrmException(encoderDir + ": no tokenizer.json in the encoder directory");
        Tokenizer tokenizer = Tokenizer.load(tokenizerJson);
        SentenceEncoder encoder = SentenceEncoder.open(encoderDir, null, threads,
                Math.multiplyExact(batchSize, ModelConfig.read(encoderDir).maxPositionEmbeddings()));
        try {
            return new EmbeddingGold(encoder, tokenizer, settings);
        } catch (RuntimeException e) {
            encoder.close();
            throw e;
        }
    }

    /** gold [n] of n samples: one embedding pass over the responses and the prompts not seen before. */
    public Gold[] score(List<Sample> samples) {
        List<int[]> sequences = new ArrayList<>();
        for (Sample s : samples) sequences.add(ids(s.response(), s.where()));
        Map<String, Integer> fresh = new LinkedHashMap<>();  // new prompt -> its row in sequences
        for (Sample s : samples)
            if (!prompts.containsKey(s.prompt()) && !fresh.containsKey(s.prompt())) {
                fresh.put(s.prompt(), sequences.size());
                sequences.add(ids(s.prompt(), s.where()));
            }
        for (int[] ids : sequences) tokens += ids.length;
        float[][] e = encoder.embed(sequences, true);        // [responses + fresh prompts][hidden]
        fresh.forEach((prompt, row) -> prompts.put(prompt, e[row]));
        Gold[] out = new Gold[samples.size()];
        for (int i = 0; i < out.length; i++) {
            float[] r = e[i];
            double sentiment = dot(r, positive) - dot(r, negative), relevance = dot(r, prompts.get(samples.get(i).prompt()));
            out[i] = new Gold(settings.sentimentWeight() * sentiment + settings.relevanceWeight() * relevance, sentiment, relevance);
        }
        return out;
    }

    /** Tokens embedded by {@link #score} so far (for progress lines). */
    public long tokens() {
        return tokens;
    }

    private int[] ids(String text, String where) {
        return rules.encode(tokenizer, specials, text, null, "", where);
    }

    /** a · b in double [hidden]. */
    private static double dot(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d += (double) a[i] * b[i];
        return d;
    }

    @Override
    public void close() {
        encoder.close();
    }
}
