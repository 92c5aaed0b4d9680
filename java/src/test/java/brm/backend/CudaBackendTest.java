package brm.backend;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static brm.backend.CudaParity.assertClose;
import static brm.backend.CudaParity.gaussian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The CUDA backend's memory, transfers and element-wise ops against the CPU backend. */
class CudaBackendTest {
    @Test
    void uploadWriteDownloadZeroAndViews() {
        Random random = new Random();
        int rows = random.nextInt(3, 40), cols = random.nextInt(3, 70);
        float[] v = gaussian(random, rows * cols), w = gaussian(random, rows * cols);
        try (CudaBackend be = CudaParity.backend()) {
            Tensor t = be.upload(v, rows, cols);
            assertArrayEquals(v, be.download(t));
            be.write(w, t);
            float[] into = new float[rows * cols + 5];
            be.download(t.firstRows(rows - 1), into);
            for (int i = 0; i < (rows - 1) * cols; i++) assertEquals(w[i], into[i], 0f);
            be.zero(t.firstRows(1));
            float[] got = be.download(t);
            for (int i = 0; i < rows * cols; i++) assertEquals(i < cols ? 0f : w[i], got[i], 0f);
            assertArrayEquals(new float[rows * cols], be.download(be.allocate(rows, cols)));
            assertThrows(IllegalArgumentException.class, () -> be.upload(v, rows + 1, cols));
        }
    }

    /** Transfers larger than the first staging buffer (1 MiB) grow it, in both directions. */
    @Test
    void largeTransfersGrowTheStagingBuffer() {
        Random random = new Random();
        int rows = random.nextInt(600, 700), cols = 1000;
        float[] v = gaussian(random, rows * cols);
        try (CudaBackend be = CudaParity.backend()) {
            Tensor small = be.upload(gaussian(random, 10), 2, 5);
            Tensor t = be.upload(v, rows, cols);
            assertArrayEquals(v, be.download(t));
            assertEquals(10, be.download(small).length);
        }
    }

    @Test
    void addMatchesTheCpu() {
        Random random = new Random();
        int rows = random.nextInt(1, 50), cols = random.nextInt(1, 300);
        float[] a = gaussian(random, rows * cols), b = gaussian(random, rows * cols);
        try (CudaBackend be = CudaParity.backend(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor out = cpu.allocate(rows, cols);
            cpu.add(cpu.upload(a, rows, cols), cpu.upload(b, rows, cols), out);
            Tensor ga = be.upload(a, rows, cols);
            be.add(ga, be.upload(b, rows, cols), ga);  // in place
            assertClose("add", cpu.download(out), be.download(ga), 0);
        }
    }

    @Test
    void droppedTensorsReturnTheirMemoryAndCloseFreesTheRest() throws InterruptedException {
        try (CudaBackend be = CudaParity.backend()) {
            for (int i = 0; i < 64; i++) be.allocate(256, 256);  // dropped at once
            System.gc();
            Thread.sleep(100);
            Tensor kept = be.allocate(8, 8);
            be.close();
            assertThrows(IllegalStateException.class, () -> be.allocate(1, 1));
            assertThrows(IllegalStateException.class, () -> be.download(kept));
        }
    }
}
