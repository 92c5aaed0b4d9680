package brm.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A row of a linear layer does not depend on the rows around it: every row of x·Wᵀ + b (packed W) has the
 * same bits whether it is computed alone, among 3, 4, 5, 12 or 13 rows (the 4-row and the 12-row kernels, full
 * and edge micro-panels) or in a batch of 29. Generation relies on this: a sample's tokens must not depend on
 * the batch size. Depth 301 spans two k blocks (odd: a zero step).
 */
class GemmRowsTest {
    private static final int OUT = 77, IN = 301, ROWS = 29;

    @Test
    void rowsHaveTheSameBitsInEveryBatch() {
        Random random = new Random(404);
        float[] w = new float[OUT * IN], bias = new float[OUT], x = new float[ROWS * IN];
        for (float[] a : new float[][] {w, bias, x})
            for (int i = 0; i < a.length; i++) a[i] = (float) random.nextGaussian();
        Gemm.PackedWeight packed = Gemm.pack(w, OUT, IN);
        float[] all = new float[ROWS * OUT];
        Gemm.linear(x, 0, ROWS, packed, bias, all, 0);
        for (int rows : new int[] {1, 3, 4, 5, 12, 13})
            for (int first = 0; first + rows <= ROWS; first += 7) {
                float[] some = new float[rows * OUT];
                Gemm.linear(x, first * IN, rows, packed, bias, some, 0);
                assertArrayEquals(Arrays.copyOfRange(all, first * OUT, (first + rows) * OUT), some, 0f, "linear, rows " + first + ".." + (first + rows));
            }
    }
}
