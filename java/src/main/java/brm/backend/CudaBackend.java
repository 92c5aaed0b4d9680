package brm.backend;

import brm.bindings.NativeException;
import brm.bindings.cuda.ActivationKernels;
import brm.bindings.cuda.AttentionKernels;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.DeviceBuffer;
import brm.bindings.cuda.DropoutKernels;
import brm.bindings.cuda.ElementwiseKernels;
import brm.bindings.cuda.EmbeddingKernels;
import brm.bindings.cuda.GemmKernels;
import brm.bindings.cuda.LayerNormKernels;
import brm.bindings.cuda.PinnedBuffer;
import brm.bindings.cuda.PoolingKernels;
import brm.bindings.cuda.RmsNormKernels;
import brm.bindings.cuda.RotaryKernels;

import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

import static brm.backend.OpChecks.check;
import static brm.backend.OpChecks.checkAttention;
import static brm.backend.OpChecks.checkCache;
import static brm.backend.OpChecks.checkLinear;
import static brm.backend.OpChecks.checkNorm;
import static brm.backend.OpChecks.checkRotary;
import static brm.backend.OpChecks.sameShape;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The CUDA backend: tensors are FP32 device memory, every op one or a few of brm's own kernels (cuda/*.cu)
 * reached through the FFM bindings of brm.bindings.cuda; Java only checks shapes, keeps the small index
 * arrays (packing, token ids, slots) on the device and orders the calls. All kernels run on one stream in
 * call order; {@link #download} waits for them.
 *
 * Memory: a tensor's device buffer is freed when no view of it is reachable (a {@link Cleaner}, so batch
 * buffers that model code drops are returned) or when the backend closes; an allocation that finds the
 * device full collects garbage once and retries. Transfers go through one page-locked staging buffer.
 *
 * Matrix products (cuda/gemm.cu): FP32 on a tiled SIMT kernel, or, for the frozen weight products of linear
 * layers (y = x·Wᵀ + b and backward's dx += dy·W) at {@link Precision#BF16}/{@link Precision#FP16}, W kept in 16
 * bits and the activations rounded to 16 bits per call, on the tensor cores with FP32 accumulation. LoRA's
 * products, matmul, segmentOuter and every parameter gradient stay FP32. LoRA runs unmerged as two products
 * through a bottleneck [rows, r] in a scratch buffer grown on demand.
 *
 * The same class runs on the CPU emulator (libbrm_cuda_emu.so), which is how its tests run without a GPU.
 */
public final class CudaBackend implements Backend {
    private static final Cleaner CLEANER = Cleaner.create();

    /** The arithmetic of the frozen weight products (linear's x·Wᵀ and its dx = dy·W). */
    public enum Precision {
        FP32, BF16, FP16
    }

    private final Cuda cuda;
    private final Precision precision;
    private final ElementwiseKernels elementwise;
    private final LayerNormKernels layerNormKernels;
    private final RmsNormKernels rmsNormKernels;
    private final ActivationKernels activation;
    private final RotaryKernels rotaryKernels;
    private final EmbeddingKernels embedding;
    private final PoolingKernels pooling;
    private final DropoutKernels dropoutKernels;
    private final AttentionKernels attentionKernels;
    private final GemmKernels gemm;
    /** Device buffers not yet freed, so that close() frees what the cleaner has not. */
    private final Set<DeviceBuffer> live = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));
    private PinnedBuffer staging;
    private final DeviceScratch packingStarts = new DeviceScratch(), packingPositions = new DeviceScratch(), scratchInts = new DeviceScratch(),
            halfScratch = new DeviceScratch(), loraScratch = new DeviceScratch();
    private Packing uploadedPacking;
    private DevicePacking packing;
    /** attentionBackward's per-(row, head) log-sum-exp and Δ, grown on demand. */
    private CudaTensor attentionStats;
    private boolean closed;

    /** FP32 throughout. */
    public CudaBackend(Cuda cuda) {
        this(cuda, Precision.FP32);
    }

    public CudaBackend(Cuda cuda, Precision precision) {
        this.cuda = cuda;
        this.precision = precision;
        this.elementwise = new ElementwiseKernels(cuda);
        this.layerNormKernels = new LayerNormKernels(cuda);
        this.rmsNormKernels = new RmsNormKernels(cuda);
        this.activation = new ActivationKernels(cuda);
        this.rotaryKernels = new RotaryKernels(cuda);
        this.embedding = new EmbeddingKernels(cuda);
        this.pooling = new PoolingKernels(cuda);
        this.dropoutKernels = new DropoutKernels(cuda);
        this.attentionKernels = new AttentionKernels(cuda);
        this.gemm = new GemmKernels(cuda);
    }

    public Cuda cuda() {
        return cuda;
    }

    /**
     * The device address of element [0, 0] of t, a tensor of this backend (FP32, row-major), for brm's kernels that live
     * outside this package (brm.laplace's); valid while t is reachable.
     */
    public MemorySegment deviceAddress(Tensor t) {
        return cuda(t).address();
    }

    public Precision precision() {
        return precision;
    }

    /** Device storage shared by a tensor and its firstRows views; the cleaner frees it when none is reachable. */
    private static final class Storage {
        DeviceBuffer buffer;  // set once, right after the Storage exists (it is the cleaner's owner)
    }

    record CudaTensor(Storage storage, int rows, int cols) implements Tensor {
        @Override
        public Tensor firstRows(int rows) {
            return new CudaTensor(storage, Tensor.firstRowsOf(this, rows), cols);
        }

        /** The device address of element [0, 0]. */
        MemorySegment address() {
            return storage.buffer.address();
        }

        /** The device address of element [row, col]. */
        MemorySegment at(int row, int col) {
            return storage.buffer.at(4L * ((long) row * cols + col));
        }

        long size() {
            return (long) rows * cols;
        }
    }

    static CudaTensor cuda(Tensor t) {
        if (t instanceof CudaTensor c) return c;
        throw new IllegalArgumentException("a " + t.getClass().getSimpleName() + " passed to the CUDA backend");
    }

    /** Device memory for {@code bytes}, tracked for close() and freed when {@code owner} becomes unreachable. */
    private DeviceBuffer deviceMemory(long bytes, Object owner) {
        if (closed) throw new IllegalStateException("CUDA backend used after close");
        DeviceBuffer buffer;
        try {
            buffer = cuda.allocate(bytes);
        } catch (NativeException full) {
            System.gc();  // dropped tensors return their memory through the cleaner
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            buffer = cuda.allocate(bytes);
        }
        DeviceBuffer b = buffer;
        live.add(b);
        CLEANER.register(owner, () -> {
            if (live.remove(b)) b.close();
        });
        return b;
    }

    private CudaTensor newTensor(int rows, int cols) {
        long n = (long) rows * cols;
        check(rows >= 0 && cols >= 0, "tensor [" + rows + ", " + cols + "]");
        Storage storage = new Storage();
        storage.buffer = deviceMemory(4 * n, storage);
        return new CudaTensor(storage, rows, cols);
    }

    /** Page-locked staging of at least {@code bytes}. */
    private MemorySegment staging(long bytes) {
        if (staging == null || staging.segment().byteSize() < bytes) {
            long size = Math.max(bytes, staging == null ? 1 << 20 : 2 * staging.segment().byteSize());
            if (staging != null) staging.close();
            staging = cuda.allocatePinned(size);
        }
        return staging.segment();
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        CudaTensor t = newTensor(rows, cols);
        cuda.zero(t.address(), 4 * t.size());
        return t;
    }

    @Override
    public Tensor upload(float[] values, int rows, int cols) {
        if (values.length != (long) rows * cols) throw new IllegalArgumentException(values.length + " values for [" + rows + ", " + cols + "]");
        CudaTensor t = newTensor(rows, cols);
        write(values, t);
        return t;
    }

    @Override
    public void write(float[] values, Tensor t) {
        CudaTensor c = cuda(t);
        if (values.length != c.size()) throw new IllegalArgumentException(values.length + " values for [" + t.rows() + ", " + t.cols() + "]");
        copyToDevice(values, c.address());
    }

    /** device [values.length floats] = values, through the staging buffer. */
    private void copyToDevice(float[] values, MemorySegment device) {
        MemorySegment host = staging(4L * values.length);
        MemorySegment.copy(values, 0, host, JAVA_FLOAT, 0, values.length);
        cuda.copyToDevice(device, host, 4L * values.length);
    }

    @Override
    public float[] download(Tensor t) {
        float[] out = new float[Math.toIntExact(cuda(t).size())];
        download(t, out);
        return out;
    }

    @Override
    public void download(Tensor t, float[] into) {
        CudaTensor c = cuda(t);
        int n = Math.toIntExact(c.size());
        MemorySegment host = staging(4L * n);
        cuda.copyToHost(host, c.address(), 4L * n);
        MemorySegment.copy(host, JAVA_FLOAT, 0, into, 0, n);
    }

    @Override
    public void zero(Tensor t) {
        CudaTensor c = cuda(t);
        cuda.zero(c.address(), 4 * c.size());
    }

    /** The batch's sequence starts [seqs+1] and row positions [tokens] on the device, uploaded once per Packing. */
    record DevicePacking(MemorySegment starts, MemorySegment positions) {}

    DevicePacking devicePacking(Packing p) {
        if (p != uploadedPacking) {
            uploadedPacking = null;  // until both arrays are up
            packing = new DevicePacking(packingStarts.upload(p.starts()), packingPositions.upload(p.positions()));
            uploadedPacking = p;
        }
        return packing;
    }

    /** {@code values} on the device until the next call (token ids, slots). */
    MemorySegment deviceInts(int[] values) {
        return scratchInts.upload(values);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        sameShape("add", out, a, b);
        elementwise.add(cuda(a).address(), cuda(b).address(), cuda(out).address(), cuda(out).size());
    }

    /**
     * Device memory reused from op to op (LoRA bottlenecks, 16-bit activations, index arrays), grown on demand;
     * nothing is allocated before the first use.
     */
    private final class DeviceScratch {
        private DeviceBuffer buffer;
        private final Object owner = new Object();

        /** At least {@code bytes} of it, valid until the next call. */
        MemorySegment atLeast(long bytes) {
            if (buffer == null || buffer.bytes() < bytes) {
                if (buffer != null && live.remove(buffer)) buffer.close();
                buffer = null;  // not the closed one, should the allocation fail
                buffer = deviceMemory(Math.max(bytes, 4096), owner);
            }
            return buffer.address();
        }

        /** {@code values} on the device, valid until the next call. */
        MemorySegment upload(int[] values) {
            MemorySegment device = atLeast(4L * values.length), host = staging(4L * values.length);
            MemorySegment.copy(values, 0, host, JAVA_INT, 0, values.length);
            cuda.copyToDevice(device, host, 4L * values.length);
            return device;
        }
    }

    /**
     * W [out, in] on the device, FP32, or at BF16/FP16 precision only its 16-bit copy (the FP32 one would never
     * be read); bias [out] FP32 or null. Its buffers are freed when the weight becomes unreachable.
     */
    private static final class CudaWeight implements Weight {
        final int out, in;
        final boolean backward;
        DeviceBuffer w, bias;  // set right after construction (the weight is their cleaner's owner)

        CudaWeight(int out, int in, boolean backward) {
            this.out = out;
            this.in = in;
            this.backward = backward;
        }

        @Override
        public int out() { return out; }

        @Override
        public int in() { return in; }
    }

    private static CudaWeight cuda(Weight w) {
        if (w instanceof CudaWeight c) return c;
        throw new IllegalArgumentException("a " + w.getClass().getSimpleName() + " passed to the CUDA backend");
    }

    @Override
    public Weight weight(float[] w, float[] bias, int out, int in, boolean backward) {
        check(out >= 0 && in >= 0 && w.length == (long) out * in, "weight has " + w.length + " values, not " + out + "x" + in);
        check(bias == null || bias.length == out, "bias has " + (bias == null ? 0 : bias.length) + " values, not " + out);
        CudaWeight cw = new CudaWeight(out, in, backward);
        if (precision == Precision.FP32) {
            cw.w = deviceMemory(4L * w.length, cw);
            copyToDevice(w, cw.w.address());
        } else {
            cw.w = deviceMemory(2L * w.length, cw);
            DeviceBuffer wide = deviceMemory(4L * w.length, cw);  // FP32 on the way to 16 bits, freed right after
            copyToDevice(w, wide.address());
            narrow(wide.address(), cw.w.address(), w.length);
            if (live.remove(wide)) wide.close();
        }
        if (bias != null) {
            cw.bias = deviceMemory(4L * bias.length, cw);
            copyToDevice(bias, cw.bias.address());
        }
        return cw;
    }

    /** out [n] = in [n] rounded to the backend's 16-bit precision. */
    private void narrow(MemorySegment in, MemorySegment out, long n) {
        if (precision == Precision.BF16) gemm.toBf16(in, out, n);
        else gemm.toFp16(in, out, n);
    }

    /**
     * The frozen weight's product at the backend's precision: forward, y [rows, out] = x [rows, in] · Wᵀ + b;
     * else dx [rows, in] += dy [rows, out] · W. In 16 bits the input is rounded into a scratch buffer first.
     */
    private void weightProduct(boolean forward, CudaWeight w, int rows, Tensor input, Tensor output) {
        int k = forward ? w.in : w.out, n = forward ? w.out : w.in;
        float beta = forward ? 0f : 1f;
        MemorySegment bias = forward && w.bias != null ? w.bias.address() : MemorySegment.NULL;
        MemorySegment x = cuda(input).address(), y = cuda(output).address(), wd = w.w.address();
        switch (precision) {
            case FP32 -> gemm.sgemm(false, forward, rows, n, k, 1f, x, k, wd, w.in, beta, y, n, bias);
            case BF16, FP16 -> {
                MemorySegment half = halfScratch.atLeast(2L * rows * k);
                narrow(x, half, (long) rows * k);
                if (precision == Precision.BF16) gemm.gemmBf16(false, forward, rows, n, k, 1f, half, k, wd, w.in, beta, y, n, bias);
                else gemm.gemmFp16(false, forward, rows, n, k, 1f, half, k, wd, w.in, beta, y, n, bias);
            }
        }
    }

    /** Scratch for LoRA's bottlenecks [rows, r]: x·Aᵀ at 0, dy·B after it in {@link #linearBackward}. */
    private MemorySegment loraScratch(long floats) {
        return loraScratch.atLeast(4 * floats);
    }

    @Override
    public void linear(Tensor x, Weight w, Lora lora, Tensor y) {
        checkLinear(x, w, lora, y);
        CudaWeight cw = cuda(w);
        int rows = x.rows(), in = cw.in, out = cw.out;
        if (rows == 0) return;
        weightProduct(true, cw, rows, x, y);
        if (lora == null) return;
        int r = lora.r();
        MemorySegment t = loraScratch((long) rows * r), xd = cuda(x).address(), a = cuda(lora.a()).address();
        gemm.sgemm(false, true, rows, r, in, 1f, xd, in, a, in, 0f, t, r, MemorySegment.NULL);
        gemm.sgemm(false, true, rows, out, r, lora.scale(), t, r, cuda(lora.b()).address(), r, 1f, cuda(y).address(), out, MemorySegment.NULL);
    }

    @Override
    public void linearBackward(Tensor x, Weight w, Lora lora, Tensor dy, Tensor dx, Tensor dA, Tensor dB) {
        checkLinear(x, w, lora, dy);
        CudaWeight cw = cuda(w);
        if (dx != null) {
            sameShape("linearBackward dx", x, dx);
            check(cw.backward, "linearBackward: dx needs W [" + cw.out + ", " + cw.in + "] prepared with backward = true");
        }
        check(lora != null || (dA == null && dB == null), "linearBackward: dA, dB without a LoRA");
        if (dA != null) sameShape("linearBackward dA", lora.a(), dA);
        if (dB != null) sameShape("linearBackward dB", lora.b(), dB);
        int rows = x.rows(), in = cw.in, out = cw.out;
        if (rows == 0) return;
        if (dx != null) weightProduct(false, cw, rows, dy, dx);
        if (lora == null) return;
        int r = lora.r();
        float scale = lora.scale();
        // scratch: u = dy·B [rows, r] at 0, t = x·Aᵀ [rows, r] after it
        MemorySegment scratch = loraScratch(2L * rows * r);
        MemorySegment u = scratch, t = MemorySegment.ofAddress(scratch.address() + 4L * rows * r);
        MemorySegment xd = cuda(x).address(), dyd = cuda(dy).address(), a = cuda(lora.a()).address(), b = cuda(lora.b()).address();
        if (dx != null || dA != null) gemm.sgemm(false, false, rows, r, out, 1f, dyd, out, b, r, 0f, u, r, MemorySegment.NULL);
        if (dx != null) gemm.sgemm(false, false, rows, in, r, scale, u, r, a, in, 1f, cuda(dx).address(), in, MemorySegment.NULL);
        if (dA != null) gemm.sgemm(true, false, r, in, rows, scale, u, r, xd, in, 1f, cuda(dA).address(), in, MemorySegment.NULL);
        if (dB != null) {
            gemm.sgemm(false, true, rows, r, in, 1f, xd, in, a, in, 0f, t, r, MemorySegment.NULL);
            gemm.sgemm(true, false, out, r, rows, scale, dyd, out, t, r, 1f, cuda(dB).address(), r, MemorySegment.NULL);
        }
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, float beta, Tensor c) {
        int m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
        int kb = transB ? b.cols() : b.rows(), n = transB ? b.rows() : b.cols();
        check(k == kb && c.rows() == m && c.cols() == n, "matmul [" + m + ", " + k + "] · [" + kb + ", " + n + "] -> [" + c.rows() + ", " + c.cols() + "]");
        gemm.sgemm(transA, transB, m, n, k, alpha, cuda(a).address(), a.cols(), cuda(b).address(), b.cols(), beta, cuda(c).address(), n,
                MemorySegment.NULL);
    }

    @Override
    public void segmentOuter(Packing p, Tensor a, Tensor b, float alpha, Tensor out) {
        int m = a.cols(), n = b.cols();
        check(a.rows() == p.tokens() && b.rows() == p.tokens() && out.rows() == p.seqs() * m && out.cols() == n,
                "segmentOuter: a [" + a.rows() + ", " + m + "], b [" + b.rows() + ", " + n + "] for " + p.seqs() + " sequences of " + p.tokens()
                        + " tokens -> out [" + out.rows() + ", " + out.cols() + "]");
        check(p.seqs() <= 65535, "segmentOuter: " + p.seqs() + " sequences, at most 65535 per call");
        if (p.seqs() == 0) return;
        gemm.segmentOuter(devicePacking(p).starts(), p.seqs(), m, n, alpha, cuda(a).address(), cuda(b).address(), cuda(out).address());
    }

    @Override
    public void dropout(Tensor x, float p, long seed, Tensor out) {
        sameShape("dropout", x, out);
        dropoutKernels.dropout(cuda(x).address(), p, seed, cuda(out).address(), cuda(out).size());
    }

    @Override
    public void embed(int[] ids, Tensor table, Tensor out) {
        check(ids.length == out.rows() && table.cols() == out.cols(),
                "embed: " + ids.length + " ids into [" + out.rows() + ", " + out.cols() + "] from a table of " + table.cols() + " columns");
        for (int id : ids) check(id >= 0 && id < table.rows(), "embed: id " + id + " outside the table of " + table.rows());
        embedding.embed(deviceInts(ids), cuda(table).address(), cuda(out).address(), out.rows(), out.cols());
    }

    @Override
    public void addPositions(Packing p, Tensor table, Tensor x) {
        check(x.rows() == p.tokens() && table.cols() == x.cols(),
                "addPositions: x [" + x.rows() + ", " + x.cols() + "] for " + p.tokens() + " tokens, table of " + table.cols() + " columns");
        checkPositions("addPositions", p, table.rows());
        embedding.addPositions(devicePacking(p).positions(), cuda(table).address(), cuda(x).address(), x.rows(), x.cols());
    }

    /** Every row's position indexes a table of {@code limit} rows. */
    private static void checkPositions(String op, Packing p, int limit) {
        for (int pos : p.positions()) check(pos >= 0 && pos < limit, op + ": position " + pos + " outside the table of " + limit);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        checkNorm("layerNorm", x, weight, bias, out);
        layerNormKernels.forward(cuda(x).address(), cuda(weight).address(), cuda(bias).address(), eps, cuda(out).address(), x.rows(), x.cols());
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        checkNorm("layerNormBackward", x, weight, null, dy);
        sameShape("layerNormBackward", x, dx);
        layerNormKernels.backward(cuda(x).address(), cuda(weight).address(), eps, cuda(dy).address(), cuda(dx).address(), x.rows(), x.cols());
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        checkNorm("rmsNorm", x, weight, null, out);
        rmsNormKernels.forward(cuda(x).address(), cuda(weight).address(), eps, cuda(out).address(), x.rows(), x.cols());
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dy, Tensor dx) {
        checkNorm("rmsNormBackward", x, weight, null, dy);
        sameShape("rmsNormBackward", x, dx);
        rmsNormKernels.backward(cuda(x).address(), cuda(weight).address(), eps, cuda(dy).address(), cuda(dx).address(), x.rows(), x.cols());
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        sameShape("gelu", x, out);
        activation.gelu(cuda(x).address(), cuda(out).address(), cuda(out).size());
    }

    @Override
    public void geluBackward(Tensor x, Tensor dy, Tensor dx) {
        sameShape("geluBackward", x, dy, dx);
        activation.geluBackward(cuda(x).address(), cuda(dy).address(), cuda(dx).address(), cuda(dx).size());
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        sameShape("siluMul", gate, up, out);
        activation.siluMul(cuda(gate).address(), cuda(up).address(), cuda(out).address(), cuda(out).size());
    }

    @Override
    public void siluMulBackward(Tensor gate, Tensor up, Tensor dy, Tensor dGate, Tensor dUp) {
        sameShape("siluMulBackward", gate, up, dy, dGate, dUp);
        activation.siluMulBackward(cuda(gate).address(), cuda(up).address(), cuda(dy).address(), cuda(dGate).address(), cuda(dUp).address(),
                cuda(gate).size());
    }

    @Override
    public void rotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin, boolean inverse) {
        int half = dims / 2;
        checkRotary(p, heads, dims, cos, sin);
        checkPositions("rotary", p, cos.rows());
        Tensor x = heads.tensor();
        rotaryKernels.rotary(cuda(x).address(), x.rows(), x.cols(), heads.offset(), heads.stride(), heads.count(), half,
                cuda(cos).address(), cuda(sin).address(), devicePacking(p).positions(), inverse);
    }

    @Override
    public void pool(Packing p, Tensor x, Pooling how, Tensor out) {
        check(x.rows() == p.tokens() && out.rows() == p.seqs() && out.cols() == x.cols(),
                "pool: x [" + x.rows() + ", " + x.cols() + "] of " + p.tokens() + " tokens into [" + out.rows() + ", " + out.cols() + "] for " + p.seqs() + " sequences");
        pooling.pool(devicePacking(p).starts(), p.seqs(), cuda(x).address(), x.cols(), poolingCode(how), cuda(out).address());
    }

    private static int poolingCode(Pooling how) {
        return switch (how) {
            case LAST -> PoolingKernels.LAST;
            case MEAN -> PoolingKernels.MEAN;
            case FIRST -> PoolingKernels.FIRST;
            case SUM -> PoolingKernels.SUM;
        };
    }

    @Override
    public void poolBackward(Packing p, Pooling how, Tensor dPooled, Tensor dx) {
        check(dx.rows() == p.tokens() && dPooled.rows() == p.seqs() && dPooled.cols() == dx.cols(),
                "poolBackward: dPooled [" + dPooled.rows() + ", " + dPooled.cols() + "] for " + p.seqs() + " sequences into dx [" + dx.rows() + ", " + dx.cols() + "] of " + p.tokens() + " tokens");
        pooling.poolBackward(devicePacking(p).starts(), p.seqs(), p.tokens(), poolingCode(how), cuda(dPooled).address(), cuda(dx).address(), dx.cols());
    }

    /** The attention kernels' tiles hold heads of up to 32, 64 or 128 dims. */
    private static void checkHeadDim(String op, int dim) {
        check(dim <= 128, op + ": heads of " + dim + " dims, at most 128 on CUDA");
    }

    private static AttentionKernels.View view(Heads h) {
        return new AttentionKernels.View(cuda(h.tensor()).at(0, h.offset()), h.tensor().cols(), h.stride());
    }

    /** Outputs must not share storage with inputs (views of one tensor share it). */
    private static void apart(String op, Tensor out, Tensor... inputs) {
        for (Tensor in : inputs) check(cuda(in).storage() != cuda(out).storage(), op + ": an output shares storage with an input");
    }

    @Override
    public void attention(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor out) {
        checkAttention("attention", p, q, k, v, out);
        checkHeadDim("attention", q.dim());
        apart("attention", out, q.tensor(), k.tensor(), v.tensor());
        DevicePacking dp = devicePacking(p);
        attentionKernels.attention(view(q), view(k), view(v), cuda(out).address(), dp.starts(), p.seqs(), p.maxLength(),
                q.count(), k.count(), q.dim(), causal, scale);
    }

    @Override
    public void attentionBackward(Packing p, Heads q, Heads k, Heads v, boolean causal, float scale, Tensor dOut,
                                  Heads dq, Heads dk, Heads dv) {
        checkAttention("attentionBackward", p, q, k, v, dOut);
        checkAttention("attentionBackward", p, dq, dk, dv, dOut);
        check(dq.count() == q.count() && dk.count() == k.count(), "attentionBackward: gradient heads differ from the inputs'");
        checkHeadDim("attentionBackward", q.dim());
        for (Heads d : new Heads[] {dq, dk, dv}) apart("attentionBackward", d.tensor(), q.tensor(), k.tensor(), v.tensor(), dOut);
        long statsSize = 2L * p.tokens() * q.count();
        if (attentionStats == null || attentionStats.size() < statsSize)
            attentionStats = newTensor(1, Math.toIntExact(Math.max(statsSize, 1024)));
        DevicePacking dp = devicePacking(p);
        attentionKernels.attentionBackward(view(q), view(k), view(v), cuda(dOut).address(), view(dq), view(dk), view(dv),
                attentionStats.address(), dp.starts(), p.seqs(), p.tokens(), p.maxLength(), q.count(), k.count(), q.dim(), causal, scale);
    }

    @Override
    public void cacheAppend(Packing p, Heads k, Heads v, int[] slots, Tensor keys, Tensor values) {
        int capacity = checkCache("cacheAppend", p, k, keys, values, slots), dim = k.dim(), kvHeads = values.cols() / dim;
        check(k.count() == kvHeads && v.count() == kvHeads && v.dim() == dim && v.tensor().rows() == p.tokens(),
                "cacheAppend: " + k.count() + "/" + v.count() + " heads of " + k.dim() + "/" + v.dim() + " dims for a cache of " + kvHeads + "x" + dim);
        DevicePacking dp = devicePacking(p);
        attentionKernels.cacheAppend(view(k), view(v), cuda(keys).address(), cuda(values).address(), dp.starts(), dp.positions(),
                deviceInts(slots), p.seqs(), p.tokens(), kvHeads, dim, capacity);
    }

    @Override
    public void cachedAttention(Packing p, Heads q, Tensor keys, Tensor values, int[] slots, float scale, Tensor out) {
        int capacity = checkCache("cachedAttention", p, q, keys, values, slots), dim = q.dim(), kvHeads = values.cols() / dim;
        check(q.count() % kvHeads == 0 && out.rows() == p.tokens() && out.cols() == q.count() * dim,
                "cachedAttention: " + q.count() + " query heads, " + kvHeads + " key/value heads, out [" + out.rows() + ", " + out.cols() + "]");
        checkHeadDim("cachedAttention", dim);
        apart("cachedAttention", out, q.tensor(), keys, values);
        DevicePacking dp = devicePacking(p);
        attentionKernels.cachedAttention(view(q), cuda(keys).address(), cuda(values).address(), cuda(out).address(), dp.starts(),
                dp.positions(), deviceInts(slots), p.seqs(), p.tokens(), q.count(), kvHeads, dim, capacity, scale);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        synchronized (live) {
            for (DeviceBuffer b : live) b.close();
            live.clear();
        }
        if (staging != null) staging.close();
    }
}
