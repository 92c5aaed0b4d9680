package brm.backbone;

import brm.BrmException;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;

/**
 * Typed reads of a config.json object with Hugging Face's defaults: an absent field takes the
 * default, a present one must have the right type; every error names the file and the field.
 */
final class ConfigFields {
    private final Path file;
    private final JsonNode root;

    ConfigFields(Path file, JsonNode root) {
        this.file = file;
        this.root = root;
    }

    Path file() {
        return file;
    }

    BrmException error(String message) {
        return new BrmException(file + ": " + message);
    }

    private JsonNode present(String name) {
        JsonNode n = root.get(name);
        return n == null || n.isNull() ? null : n;
    }

    boolean has(String name) {
        return present(name) != null;
    }

    JsonNode node(String name) {
        return present(name);
    }

    int positive(String name) {
        JsonNode n = present(name);
        if (n == null) throw error("missing " + name);
        return positive(name, n);
    }

    int positive(String name, int fallback) {
        JsonNode n = present(name);
        return n == null ? fallback : positive(name, n);
    }

    private int positive(String name, JsonNode n) {
        if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() < 1) throw error(name + " must be a positive integer, got " + n);
        return n.asInt();
    }

    double number(String name, double fallback) {
        JsonNode n = present(name);
        if (n == null) return fallback;
        if (!n.isNumber()) throw error(name + " must be a number, got " + n);
        return n.asDouble();
    }

    boolean bool(String name, boolean fallback) {
        JsonNode n = present(name);
        if (n == null) return fallback;
        if (!n.isBoolean()) throw error(name + " must be true or false, got " + n);
        return n.asBoolean();
    }

    String string(String name, String fallback) {
        JsonNode n = present(name);
        if (n == null) return fallback;
        if (!n.isTextual()) throw error(name + " must be a string, got " + n);
        return n.asText();
    }

    /** A string field that must be one of the supported values. */
    String oneOf(String name, String fallback, String... supported) {
        String value = string(name, fallback);
        if (!List.of(supported).contains(value))
            throw error(name + " " + value + " is not supported (brm supports " + String.join(", ", supported) + ")");
        return value;
    }

    /** A token id: absent takes the default, an explicit null means none. */
    OptionalInt tokenId(String name, Integer fallback) {
        if (!root.has(name)) return fallback == null ? OptionalInt.empty() : OptionalInt.of(fallback);
        JsonNode n = present(name);
        if (n == null) return OptionalInt.empty();
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 0) throw error(name + " must be a token id, got " + n);
        return OptionalInt.of(n.asInt());
    }

    /** A token id or a list of them (eos_token_id may be either). */
    List<Integer> tokenIds(String name, Integer fallback) {
        JsonNode n = root.get(name);
        if (n == null || !n.isArray()) {
            OptionalInt one = tokenId(name, fallback);
            return one.isPresent() ? List.of(one.getAsInt()) : List.of();
        }
        List<Integer> ids = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isIntegralNumber() || !e.canConvertToInt() || e.asInt() < 0) throw error(name + " must list token ids, got " + n);
            ids.add(e.asInt());
        }
        return List.copyOf(ids);
    }

    /**
     * Rotary settings, written by transformers 4.x as top-level fields plus {@code rope_scaling}, and
     * by 5.x as {@code rope_parameters {rope_type, rope_theta, partial_rotary_factor}}. Only the
     * default (unscaled) rotary is supported.
     */
    Rope rope(String thetaField, double thetaDefault, String partialField, double partialDefault) {
        for (String field : List.of("rope_scaling", "rope_parameters")) {
            JsonNode n = present(field);
            if (n == null) continue;
            if (!n.isObject()) throw error(field + " must be an object or null, got " + n);
            JsonNode type = n.has("rope_type") ? n.get("rope_type") : n.get("type");
            if (type == null || !type.asText().equals("default"))
                throw error(field + " " + n + " is not supported (brm supports only the default, unscaled rotary embedding)");
        }
        JsonNode params = present("rope_parameters");
        ConfigFields source = params == null ? this : new ConfigFields(file, params);
        String theta = params == null ? thetaField : "rope_theta", partial = params == null ? partialField : "partial_rotary_factor";
        double base = source.number(theta, thetaDefault), fraction = source.number(partial, partialDefault);
        if (!(base > 0)) throw error(theta + " must be positive, got " + base);
        if (!(fraction > 0 && fraction <= 1)) throw error(partial + " must be in (0, 1], got " + fraction);
        return new Rope(base, fraction);
    }

    record Rope(double theta, double fraction) {}
}
