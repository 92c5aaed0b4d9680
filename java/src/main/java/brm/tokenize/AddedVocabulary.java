package brm.tokenize;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code added_tokens} of a tokenizer.json and how they are cut out of the text before
 * anything else runs.
 *
 * Ids follow the Hugging Face rule, token by token in file order: a token already known (added
 * earlier or in the model vocab) keeps that id, a new one gets max(model vocab size, largest added
 * id + 1). Matching is leftmost-longest, non-overlapping: tokens with normalized=false are matched
 * in the raw text, those with normalized=true in each normalized piece (against their own
 * normalized form). A single_word match must not touch a word char (Rust regex {@code \w}) on
 * either side; lstrip / rstrip widen a match over the White_Space beside it.
 */
final class AddedVocabulary {
    record AddedToken(String content, boolean singleWord, boolean lstrip, boolean rstrip, boolean normalized,
                      boolean special) {}

    /** A cut of the text: [start, end) is either plain text (id = -1) or the added token id. */
    record Segment(int start, int end, int id) {
        boolean isToken() {
            return id >= 0;
        }
    }

    private final Map<String, Integer> ids = new HashMap<>();
    private final Map<Integer, AddedToken> tokens = new HashMap<>();
    private final Set<String> specialContents = new HashSet<>();
    private final Matcher rawMatcher;
    private final Matcher normalizedMatcher;

    AddedVocabulary(List<AddedToken> fileOrder, TokenModel model, TextNormalizer normalizer) {
        List<AddedToken> special = new ArrayList<>(), plain = new ArrayList<>();
        int modelSize = model.vocab().size(), maxId = -1;
        for (AddedToken token : fileOrder) {
            if (token.special() && !token.content().isEmpty() && specialContents.add(token.content())) special.add(token);
            Integer id = ids.get(token.content());
            if (token.content().isEmpty() || id != null && token.equals(tokens.get(id))) continue; // already there as is
            if (id == null) id = model.vocab().get(token.content());
            if (id == null) id = Math.max(modelSize, maxId + 1);
            maxId = Math.max(maxId, id);
            ids.put(token.content(), id);
            tokens.put(id, token);
            if (!specialContents.contains(token.content())) plain.add(token);
        }
        Map<String, Integer> raw = new LinkedHashMap<>(), normalized = new LinkedHashMap<>();
        for (List<AddedToken> group : List.of(special, plain)) {
            for (AddedToken token : group) {
                int id = ids.get(token.content());
                if (token.normalized()) {
                    String pattern = normalizer == null ? token.content() : normalizer.normalize(token.content());
                    normalized.putIfAbsent(pattern, id);
                } else {
                    raw.putIfAbsent(token.content(), id);
                }
            }
        }
        rawMatcher = new Matcher(raw);
        normalizedMatcher = new Matcher(normalized);
    }

    /** The id of an added token, or null. */
    Integer id(String content) {
        return ids.get(content);
    }

    /** The content of the added token with this id, or null. */
    String content(int id) {
        AddedToken token = tokens.get(id);
        return token == null ? null : token.content();
    }

    boolean isSpecial(String content) {
        return specialContents.contains(content);
    }

    Set<String> contents() {
        return ids.keySet();
    }

    /** Cuts raw text around the normalized=false tokens. */
    List<Segment> splitRaw(String text) {
        return split(text, rawMatcher);
    }

    /** Cuts one normalized piece around the normalized=true tokens. */
    List<Segment> splitNormalized(String text) {
        return split(text, normalizedMatcher);
    }

    private List<Segment> split(String text, Matcher matcher) {
        List<Segment> out = new ArrayList<>(4);
        int done = 0;
        for (int at = matcher.firstPossible(text, 0); at < text.length(); ) {
            long match = matcher.longestAt(text, at);
            if (match < 0) {
                at = matcher.firstPossible(text, at + 1);
                continue;
            }
            int start = at, stop = (int) (match >>> 32), id = (int) match;
            at = matcher.firstPossible(text, stop);
            AddedToken token = tokens.get(id);
            if (token.singleWord() && (start > 0 && Unicode.isRegexWordChar(text.codePointBefore(start))
                    || stop < text.length() && Unicode.isRegexWordChar(text.codePointAt(stop)))) continue;
            if (token.lstrip()) {
                int newStart = start;
                while (newStart > 0 && Unicode.isWhiteSpace(text.charAt(newStart - 1))) newStart--;
                start = Math.max(newStart, done);
            }
            if (token.rstrip()) {
                while (stop < text.length() && Unicode.isWhiteSpace(text.charAt(stop))) stop++;
            }
            if (done < start) out.add(new Segment(done, start, -1));
            out.add(new Segment(start, stop, id));
            done = stop;
        }
        if (done < text.length()) out.add(new Segment(done, text.length(), -1));
        return out;
    }

    /** A char trie over the patterns: finds the longest pattern starting at a position. */
    private static final class Matcher {
        private static final class Node {
            final Map<Character, Node> children = new HashMap<>(4);
            int id = -1;
        }

        private final Node root = new Node();
        private final boolean[] asciiStarts = new boolean[128];
        private final boolean anyNonAsciiStart;

        Matcher(Map<String, Integer> patterns) {
            boolean nonAscii = false;
            for (Map.Entry<String, Integer> pattern : patterns.entrySet()) {
                String text = pattern.getKey();
                if (text.isEmpty()) continue;
                Node node = root;
                for (int i = 0; i < text.length(); i++)
                    node = node.children.computeIfAbsent(text.charAt(i), c -> new Node());
                node.id = pattern.getValue();
                char first = text.charAt(0);
                if (first < 128) asciiStarts[first] = true;
                else nonAscii = true;
            }
            anyNonAsciiStart = nonAscii;
        }

        /** The first index ≥ from where a pattern may start (text.length() if none). */
        int firstPossible(String text, int from) {
            if (root.children.isEmpty()) return text.length();
            int i = from;
            while (i < text.length()) {
                char c = text.charAt(i);
                if (c < 128 ? asciiStarts[c] : anyNonAsciiStart) break;
                i++;
            }
            return i;
        }

        /** (end << 32 | id) of the longest pattern starting at text[at], or -1. */
        long longestAt(String text, int at) {
            long best = -1;
            Node node = root;
            for (int i = at; i < text.length(); i++) {
                node = node.children.get(text.charAt(i));
                if (node == null) break;
                if (node.id >= 0) best = (long) (i + 1) << 32 | node.id;
            }
            return best;
        }
    }
}
