package brm.tokenize;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The GPT-NeoX-20B tokenizer (all Pythia models) against the reference encodings in its SOURCE.txt. */
class NeoxTokenizerTest {
    private static Tokenizer neox;

    @BeforeAll
    static void load() {
        neox = Tokenizer.load(TestTexts.sharedData().resolve("gpt-neox-20b-tokenizer/20B_tokenizer.json"));
    }

    @Test
    void sourceReferenceEncodings() {
        assertArrayEquals(new int[]{30003, 310, 271, 9775, 326, 8631, 247, 4836, 15},
                neox.encode("Below is an instruction that describes a task.", false));
        int[] expected = {12092, 1533, 2, 50276, 14819, 36005, 14, 1967, 46, 4648, 443, 5736, 14, 6560, 80, 57, 434,
                10669, 6081, 15, 187};
        String text = "Hello world!  Pythia-70M uses GPT-NeoX's tokenizer.\n";
        assertArrayEquals(expected, neox.encode(text, false));
        assertArrayEquals(expected, neox.encode(text, true), "no post-processor: nothing added");
        assertEquals(text, neox.decode(expected, false));
    }

    @Test
    void vocabularyAndSpecialTokens() {
        assertEquals(50277, neox.vocabSize());
        assertEquals("  ", neox.token(50276));
        assertEquals("<|endoftext|>", neox.token(0));
        assertEquals("Ġworld", neox.token(1533));
        assertEquals(OptionalInt.of(1), neox.tokenId("<|padding|>"));
        assertEquals(OptionalInt.of(50254), neox.tokenId(" ".repeat(24)));
        assertEquals(OptionalInt.empty(), neox.tokenId("no such token"));
        assertThrows(IllegalArgumentException.class, () -> neox.token(50277));
        var special = neox.specialTokens();
        assertEquals(OptionalInt.of(0), special.bos());
        assertEquals(OptionalInt.of(0), special.eos());
        assertEquals(OptionalInt.of(0), special.unk());
        assertEquals(OptionalInt.of(1), special.pad());
        assertEquals(OptionalInt.empty(), special.cls());
        assertEquals(OptionalInt.empty(), special.sep());
    }

    @Test
    void addedTokensAreCutBeforeThePattern() {
        assertArrayEquals(new int[]{66, 0, 67}, neox.encode("a<|endoftext|>b", false));
        assertEquals("ab", neox.decode(new int[]{66, 0, 67}, true));
        assertEquals("a<|endoftext|>b", neox.decode(new int[]{66, 0, 67}, false));
    }
}
