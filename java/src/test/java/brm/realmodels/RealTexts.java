package brm.realmodels;

import brm.io.DataFolder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Real text from the data folder: AlpacaEval's instructions with Pythia-12B SFT answers, AlpacaFarm's instructions
 * with an input, AlpacaFarm's own prompt templates (the reference for --template alpaca) and a TinyStories story.
 */
final class RealTexts {
    private static final String ALPACA_EVAL = "github.com/tatsu-lab/alpaca_eval", ALPACA_FARM = "github.com/tatsu-lab/alpaca_farm";

    private static final Map<Path, JsonNode> PARSED = new ConcurrentHashMap<>();

    private RealTexts() {}

    /** One instruction, its input ("" for none) and a response. */
    record Example(String instruction, String input, String output) {}

    /** count distinct AlpacaEval examples, drawn by random among those with instruction + output at most maxChars long. */
    static List<Example> alpacaEval(Random random, int count, int maxChars) {
        List<Example> fitting = new ArrayList<>();
        for (JsonNode r : read(DataFolder.require("alpaca-eval", "pythia-12b-mix-sft__model_outputs.json", ALPACA_EVAL))) {
            Example e = new Example(r.get("instruction").asText(), "", r.get("output").asText());
            if (e.instruction().length() + e.output().length() <= maxChars) fitting.add(e);
        }
        List<Example> chosen = new ArrayList<>();
        for (int i = 0; i < count; i++) chosen.add(fitting.remove(random.nextInt(fitting.size())));
        return chosen;
    }

    /**
     * The GPT-4-judged AlpacaEval pairs of both annotation files (AlpacaFarm PPO and Alpaca 7B, each against
     * text-davinci-003) as TRL lines {"prompt", "chosen", "rejected"}: the judged winner is chosen; draws and
     * invalid judgements (preference other than 1 or 2) are left out.
     */
    static List<String> alpacaEvalPairs() {
        List<String> lines = new ArrayList<>();
        for (String file : List.of("alpaca-farm-ppo-human__alpaca_eval_gpt4__annotations.json", "alpaca-7b__alpaca_eval_gpt4__annotations.json"))
            for (JsonNode a : read(DataFolder.require("alpaca-eval", file, ALPACA_EVAL))) {
                String preference = a.path("preference").asText();
                if (!preference.equals("1") && !preference.equals("2") && !preference.equals("1.0") && !preference.equals("2.0")) continue;
                boolean first = preference.startsWith("1");
                var line = new ObjectMapper().createObjectNode().put("prompt", a.get("instruction").asText())
                        .put("chosen", a.get(first ? "output_1" : "output_2").asText()).put("rejected", a.get(first ? "output_2" : "output_1").asText());
                lines.add(line.toString());
            }
        return lines;
    }

    /** The AlpacaFarm pair examples that have a non-empty input, with their first output. */
    static List<Example> alpacaFarmWithInput() {
        List<Example> out = new ArrayList<>();
        for (JsonNode r : read(DataFolder.require("alpaca-farm", "outputs_pairs.json", ALPACA_FARM)))
            if (!r.path("input").asText().isEmpty())
                out.add(new Example(r.get("instruction").asText(), r.get("input").asText(), r.get("output_1").asText()));
        return out;
    }

    /** AlpacaFarm's prompt (examples/prompts/v0_inputs_noinputs.json) for an example, the response appended. */
    static String alpacaText(Example e) {
        JsonNode prompts = read(DataFolder.require("alpaca-farm", "v0_inputs_noinputs.json", ALPACA_FARM));
        String template = prompts.get(e.input().isEmpty() ? "prompt_noinputs" : "prompt_inputs").asText();
        return template.replace("{instruction}", e.instruction()).replace("{input}", e.input()) + e.output();
    }

    /** The first story of the TinyStories sample, the text before its first end-of-text line. */
    static String firstTinyStory() {
        try {
            String sample = Files.readString(DataFolder.require("tinystories-sample", "tinystories_sample.txt", "github.com/wdb2021/CS336"));
            return sample.substring(0, sample.indexOf("\n<|endoftext|>"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The sentences of the TinyStories sample (split after '.', '!' or '?'), at least 20 characters each. */
    static List<String> tinyStorySentences() {
        try {
            String sample = Files.readString(DataFolder.require("tinystories-sample", "tinystories_sample.txt", "github.com/wdb2021/CS336"));
            List<String> out = new ArrayList<>();
            for (String s : sample.replace("<|endoftext|>", "\n").split("(?<=[.!?])\\s+")) if (s.strip().length() >= 20) out.add(s.strip());
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Each data file is parsed once per test run. */
    private static JsonNode read(Path file) {
        return PARSED.computeIfAbsent(file, f -> {
            try {
                return new ObjectMapper().readTree(f.toFile());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
