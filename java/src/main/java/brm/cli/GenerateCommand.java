package brm.cli;

import brm.BrmException;
import brm.backbone.ModelConfig;
import brm.io.AtomicFiles;
import brm.io.Jsonl;
import brm.policy.Generator;
import brm.policy.Sampler;
import brm.reward.CausalLM;
import brm.tokenize.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.Options;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** brm generate: n sampled continuations of each prompt from a decoder (KV cache, batched decoding). */
final class GenerateCommand implements Command {
    @Override
    public String name() {
        return "generate";
    }

    @Override
    public String summary() {
        return "sample n continuations per prompt from a causal LM: {\"prompt_id\", \"sample_id\", \"prompt\", \"response\", \"response_ids\", \"logprob\"}";
    }

    @Override
    public String details() {
        return """
                Prompt lines: {"id", "prompt"} (text, tokenized as Hugging Face's tokenizer(prompt) does,
                special tokens included: llama's BOS) or {"id", "prompt_ids": [...]} (used as given); ids are
                unique strings or numbers. A sample stops at a stop id (default: the model's eos_token_id)
                or after --max-new-tokens tokens; prompt + --max-new-tokens must fit max_position_embeddings.
                (llama2.c models such as stories260K end a story with BOS, id 1: give --stop-ids 1,2.)
                Output: one line per sample, by prompt then sample_id 0..n-1: "prompt" (the text, or the
                prompt_ids decoded), "response" (the new tokens' text, special tokens and the stop id
                dropped), "response_ids" (the new tokens, the stop id last when one ended the sample),
                "logprob" (sum over response_ids of log p(token) under the raw model: log-softmax of the
                logits at temperature 1, before top-k/top-p). Sampling: temperature, then top-k, then top-p
                (the smallest set of tokens whose probabilities sum to >= p); --temperature 0 is greedy.
                Deterministic: sample j of the i-th prompt line draws from a random stream of (--seed, i, j)
                alone, so the output does not depend on --batch-size or --threads (with --adapter, up to
                the LoRA branch's rounding), and a larger --n keeps the first samples.""";
    }

    @Override
    public Options options() {
        Options o = new Options();
        o.addOption(Args.required("model", "DIR", "Hugging Face decoder directory (GPT-NeoX or Llama) with tokenizer.json"));
        o.addOption(Args.value("adapter", "ADIR", "PEFT LoRA adapter directory applied to the model"));
        o.addOption(Args.required("prompts", "P.jsonl", "prompt lines {\"id\", \"prompt\"} or {\"id\", \"prompt_ids\"}"));
        o.addOption(Args.required("n", "N", "samples per prompt"));
        o.addOption(Args.required("max-new-tokens", "M", "most tokens per sample"));
        o.addOption(Args.value("temperature", "T", "softmax temperature (default 1; 0: greedy)"));
        o.addOption(Args.value("top-k", "K", "draw from the K most likely tokens only (default: all)"));
        o.addOption(Args.value("top-p", "P", "nucleus sampling: draw from the smallest set with probability >= P (default 1: all)"));
        o.addOption(Args.value("stop-ids", "ID,...", "token ids that end a sample (default: the model's eos_token_id)"));
        o.addOption(Args.value("seed", "S", "seed of the random streams (default 0)"));
        o.addOption(Args.value("batch-size", "B", "samples decoded together (default 32)"));
        Args.addCompute(o);
        o.addOption(Args.required("output", "OUT.jsonl", "samples (written atomically; - for standard output)"));
        return o;
    }

    /** A prompt line: its id as given, its text, its ids. */
    private record Prompt(JsonNode id, String text, int[] ids) {}

    @Override
    public void run(CommandLine line) {
        int n = Args.positiveInt(line, "n", 1), maxNew = Args.positiveInt(line, "max-new-tokens", 1);
        double temperature = Args.number(line, "temperature", 1, 0, false), topP = Args.number(line, "top-p", 1, 0, true);
        if (topP > 1) throw new UsageException("--top-p must be at most 1, got " + topP);
        Sampler.Settings sampling = new Sampler.Settings(temperature, line.hasOption("top-k") ? Args.positiveInt(line, "top-k", 0) : 0, topP);
        long seed = line.hasOption("seed") ? Args.optionalLong(line, "seed") : 0;
        int batch = Args.positiveInt(line, "batch-size", 32);
        ModelSession session = ModelSession.open(line);
        Path tokenizerFile = session.modelDir().resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerFile)) throw new BrmException(session.modelDir() + ": no tokenizer.json (brm generate writes text)");
        Tokenizer tokenizer = Tokenizer.load(tokenizerFile);
        List<Prompt> prompts = readPrompts(Args.path(line, "prompts"), tokenizer, session.config(), session.modelDir(), maxNew);
        int[] stops = line.hasOption("stop-ids") ? stopIds(line.getOptionValue("stop-ids"), session.config().vocabSize())
                : session.config().tokens().eos().stream().mapToInt(Integer::intValue).toArray();
        Progress progress = new Progress("generate", "samples");
        long[] drawn = new long[1];
        List<Generator.Sample> samples;
        try (CausalLM lm = CausalLM.open(session.modelDir(), session.adapter(line), Args.threads(line))) {
            samples = Generator.generate(lm, prompts.stream().map(Prompt::ids).toList(), n,
                    new Generator.Options(maxNew, sampling, seed, batch, stops), (done, tokens) -> {
                        drawn[0] = tokens;
                        progress.update(done, tokens);
                    });
        }
        progress.finish(samples.size(), drawn[0]);
        AtomicFiles.write(Args.path(line, "output"), out -> {
            for (Generator.Sample s : samples) {
                Prompt p = prompts.get(s.prompt());
                ObjectNode o = Jsonl.JSON.createObjectNode();
                o.set("prompt_id", p.id());
                o.put("sample_id", s.sampleId());
                o.put("prompt", p.text());
                o.put("response", responseText(tokenizer, p.ids(), s.stopped() ? Arrays.copyOf(s.ids(), s.ids().length - 1) : s.ids()));
                var ids = o.putArray("response_ids");
                for (int id : s.ids()) ids.add(id);
                o.put("logprob", s.logprob());
                Jsonl.writeLine(out, o);
            }
        });
    }

    private static int[] stopIds(String spec, int vocab) {
        try {
            int[] ids = Arrays.stream(spec.split(",", -1)).map(String::strip).mapToInt(Integer::parseInt).toArray();
            if (Arrays.stream(ids).allMatch(id -> id >= 0 && id < vocab)) return ids;
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageException("--stop-ids must be comma-separated token ids in [0, " + vocab + "), got '" + spec + "'");
    }

    /** The prompt lines, each checked, with ids; errors name file:line. */
    private static List<Prompt> readPrompts(Path file, Tokenizer tokenizer, ModelConfig config, Path modelDir, int maxNew) {
        List<Prompt> prompts = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        int vocab = config.vocabSize(), limit = config.maxPositionEmbeddings();
        try (Jsonl.Reader reader = Jsonl.Reader.open(file)) {
            for (Jsonl.Line l = reader.next(); l != null; l = reader.next()) {
                String where = file + ":" + l.number();
                JsonNode v = l.value(), id = v.get("id");
                if (id == null || id.isNull()) throw new BrmException(where + ": missing field \"id\"");
                if (!id.isTextual() && !id.isNumber()) throw new BrmException(where + ": \"id\" must be a string or a number");
                Integer before = seen.putIfAbsent(id.asText(), l.number());
                if (before != null) throw new BrmException(where + ": id " + id + " is already used on line " + before);
                boolean hasText = v.has("prompt"), hasIds = v.has("prompt_ids");
                if (hasText == hasIds)
                    throw new BrmException(where + ": " + (hasText ? "has both \"prompt\" and \"prompt_ids\"; give one" : "missing field \"prompt\" (or \"prompt_ids\")"));
                int[] ids;
                String text;
                if (hasText) {
                    if (!v.get("prompt").isTextual()) throw new BrmException(where + ": \"prompt\" must be a string");
                    text = v.get("prompt").asText();
                    ids = tokenizer.encode(text, true);
                    if (ids.length == 0) throw new BrmException(where + ": the prompt encodes to no tokens");
                } else {
                    ids = promptIds(v.get("prompt_ids"), vocab, where);
                    text = tokenizer.decode(ids, true);
                }
                if (ids.length + maxNew > limit)
                    throw new BrmException(where + ": " + ids.length + " prompt tokens + --max-new-tokens " + maxNew + " exceed max_position_embeddings "
                            + limit + " of " + modelDir.resolve(ModelConfig.FILE));
                prompts.add(new Prompt(id, text, ids));
            }
        }
        if (prompts.isEmpty()) throw new BrmException(file + ": no prompts");
        return prompts;
    }

    private static int[] promptIds(JsonNode node, int vocab, String where) {
        if (!node.isArray() || node.isEmpty()) throw new BrmException(where + ": \"prompt_ids\" must be a non-empty array of token ids");
        int[] ids = new int[node.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = node.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt())
                throw new BrmException(where + ": prompt_ids[" + i + "] = " + id + " is not an integer token id");
            ids[i] = id.intValue();
            if (ids[i] < 0 || ids[i] >= vocab)
                throw new BrmException(where + ": prompt_ids[" + i + "] = " + ids[i] + " is outside the vocabulary [0, " + vocab + ")");
        }
        return ids;
    }

    /**
     * The text the new tokens add to the prompt: decode(prompt + response) minus decode(prompt), as transformers'
     * text-generation pipeline does, so that a word-initial space a SentencePiece decoder strips at the start of
     * a text survives; decode(response) alone when the prompt's text is not a prefix.
     */
    static String responseText(Tokenizer tokenizer, int[] prompt, int[] response) {
        int[] all = Arrays.copyOf(prompt, prompt.length + response.length);
        System.arraycopy(response, 0, all, prompt.length, response.length);
        String whole = tokenizer.decode(all, true), head = tokenizer.decode(prompt, true);
        return whole.startsWith(head) ? whole.substring(head.length()) : tokenizer.decode(response, true);
    }
}
