package brm.bindings.cuda;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Memory, copies, a kernel and error reporting through the bindings, on a GPU when present, else on the emulator. */
class CudaRuntimeTest {
    @Test
    void copiesRoundTripAndAKernelRuns() {
        Cuda cuda = TestCuda.get();
        Random random = new Random();
        int n = random.nextInt(1000, 5000);
        float[] a = new float[n], b = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
            b[i] = (float) random.nextGaussian();
        }
        long bytes = 4L * n;
        try (DeviceBuffer da = cuda.allocate(bytes); DeviceBuffer db = cuda.allocate(bytes); DeviceBuffer sum = cuda.allocate(bytes);
             PinnedBuffer staging = cuda.allocatePinned(bytes)) {
            MemorySegment.copy(a, 0, staging.segment(), JAVA_FLOAT, 0, n);
            cuda.copyToDevice(da.address(), staging.segment(), bytes);
            MemorySegment.copy(b, 0, staging.segment(), JAVA_FLOAT, 0, n);
            cuda.copyToDevice(db.address(), staging.segment(), bytes);
            new ElementwiseKernels(cuda).add(da.address(), db.address(), sum.address(), n);
            cuda.copyToHost(staging.segment(), sum.address(), bytes);
            float[] got = staging.segment().toArray(JAVA_FLOAT);
            for (int i = 0; i < n; i++) assertEquals(a[i] + b[i], got[i], 0f, "element " + i);
            // an offset view and a device-to-device copy
            cuda.copyOnDevice(da.address(), db.at(4L * (n / 2)), 4L * (n / 2));
            cuda.copyToHost(staging.segment(), da.address(), 4L * (n / 2));
            for (int i = 0; i < n / 2; i++) assertEquals(b[n / 2 + i], staging.segment().getAtIndex(JAVA_FLOAT, i), 0f);
            cuda.zero(da.address(), bytes);
            cuda.copyToHost(staging.segment(), da.address(), bytes);
            assertArrayEquals(new float[n], staging.segment().toArray(JAVA_FLOAT));
        }
    }

    @Test
    void failuresNameTheFunctionAndTheCudaError() {
        Cuda cuda = TestCuda.get();
        // a device buffer of 2^62 bytes cannot exist: cudaMalloc reports out of memory
        var e = assertThrows(RuntimeException.class, () -> cuda.allocate(1L << 62));
        assertTrue(e.getMessage().startsWith("brm_malloc failed with status 2 (out of memory)"), e.getMessage());
        DeviceBuffer buffer = cuda.allocate(16);
        assertThrows(IndexOutOfBoundsException.class, () -> buffer.at(17));
        buffer.close();
        assertThrows(IllegalStateException.class, buffer::address);
    }
}
