package brm.batch;

import brm.BrmException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How a (prompt, response) pair becomes the text a reward model reads.
 * none: prompt + response as is. alpaca: AlpacaFarm's reward-model format, the Alpaca instruction
 * template around the prompt (the "with input" variant when the line has a non-empty "input") followed
 * directly by the response. response: the response alone (a reward model that never sees the prompt).
 * FILE: a text file with {response} and optionally {prompt} and {input}.
 */
public record Template(String name, String text, String textWithInput) {
    static final String ALPACA = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{prompt}\n\n### Response:{response}";
    static final String ALPACA_INPUT = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{prompt}\n\n### Input:\n{input}\n\n### Response:{response}";

    public static final Template NONE = new Template("none", "{prompt}{response}", null);

    public static final Template RESPONSE = new Template("response", "{response}", null);

    public static Template parse(String spec) {
        if (spec == null || spec.equals("none")) return NONE;
        if (spec.equals("response")) return RESPONSE;
        if (spec.equals("alpaca")) return new Template("alpaca", ALPACA, ALPACA_INPUT);
        Path file = Path.of(spec);
        if (!Files.isRegularFile(file))
            throw new BrmException("--template " + spec + ": not none, alpaca, response, or an existing template file");
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new BrmException(file + ": cannot read template: " + e.getMessage());
        }
        if (!text.contains("{response}"))
            throw new BrmException(file + ": a template must contain {response}");
        return new Template(file.toString(), text, null);
    }

    /** The text for one line; {@code input} may be null or empty. */
    public String apply(String prompt, String input, String response) {
        boolean withInput = input != null && !input.isEmpty();
        String t = withInput && textWithInput != null ? textWithInput : text;
        if (withInput && !t.contains("{input}"))
            throw new BrmException("template " + name + " has no {input} slot but the line has a non-empty \"input\"");
        // substitute in one pass so a prompt containing "{response}" is never re-expanded
        StringBuilder out = new StringBuilder(t.length() + prompt.length() + response.length());
        int i = 0;
        while (i < t.length()) {
            if (t.startsWith("{prompt}", i)) { out.append(prompt); i += 8; }
            else if (t.startsWith("{response}", i)) { out.append(response); i += 10; }
            else if (t.startsWith("{input}", i)) { out.append(withInput ? input : ""); i += 7; }
            else out.append(t.charAt(i++));
        }
        return out.toString();
    }
}
