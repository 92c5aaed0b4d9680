package brm.tokenize;

import java.util.Arrays;

/**
 * An open-addressing hash map from non-negative long keys to non-negative long values, without
 * boxing: BPE's merge table and WordPiece's trie edges live on the encode path.
 */
final class LongLongMap {
    private static final long EMPTY = -1;

    private long[] keys;
    private long[] values;
    private int size;

    LongLongMap(int expected) {
        int capacity = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
        keys = new long[capacity];
        values = new long[capacity];
        Arrays.fill(keys, EMPTY);
    }

    /** The value stored for key, or -1. */
    long get(long key) {
        int mask = keys.length - 1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            long k = keys[i];
            if (k == key) return values[i];
            if (k == EMPTY) return -1;
        }
    }

    /** Stores key → value (both ≥ 0), replacing any earlier value. */
    void put(long key, long value) {
        if (key < 0 || value < 0) throw new IllegalArgumentException("negative key or value");
        if (2 * (size + 1) > keys.length) grow();
        int mask = keys.length - 1;
        int i = slot(key, mask);
        while (keys[i] != EMPTY && keys[i] != key) i = (i + 1) & mask;
        if (keys[i] == EMPTY) size++;
        keys[i] = key;
        values[i] = value;
    }

    private void grow() {
        long[] oldKeys = keys, oldValues = values;
        keys = new long[oldKeys.length * 2];
        values = new long[oldKeys.length * 2];
        Arrays.fill(keys, EMPTY);
        size = 0;
        for (int i = 0; i < oldKeys.length; i++) if (oldKeys[i] != EMPTY) put(oldKeys[i], oldValues[i]);
    }

    private static int slot(long key, int mask) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }
}
