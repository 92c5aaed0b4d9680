package brm.backbone;

import java.util.List;
import java.util.OptionalInt;

/** The special token ids of a config.json: bos_token_id, eos_token_id (one or several), pad_token_id. */
public record TokenIds(OptionalInt bos, List<Integer> eos, OptionalInt pad) {
    public TokenIds {
        eos = List.copyOf(eos);
    }
}
