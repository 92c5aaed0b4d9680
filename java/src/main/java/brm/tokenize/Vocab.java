package brm.tokenize;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

/** A model vocabulary both ways: token → id and a dense id → token table (null for unused ids). */
record Vocab(Map<String, Integer> ids, String[] tokens) {
    static Vocab of(Map<String, Integer> ids) {
        int maxId = -1;
        for (int id : ids.values()) {
            if (id < 0) throw new IllegalArgumentException("negative token id " + id);
            maxId = Math.max(maxId, id);
        }
        String[] tokens = new String[maxId + 1];
        ids.forEach((token, id) -> tokens[id] = token);
        return new Vocab(Collections.unmodifiableMap(new HashMap<>(ids)), tokens);
    }

    String token(int id) {
        return id >= 0 && id < tokens.length ? tokens[id] : null;
    }

    /** The id of a token the model needs, e.g. its unk token; a missing one is a broken file. */
    int require(String token, String role) {
        Integer id = ids.get(token);
        if (id == null) throw new IllegalArgumentException(role + " '" + token + "' is not in the vocab");
        return id;
    }
}
