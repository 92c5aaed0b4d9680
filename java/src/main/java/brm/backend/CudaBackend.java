package brm.backend;

import brm.bindings.NativeException;
import brm.bindings.cuda.AttentionKernels;
import brm.bindings.cuda.Cuda;
import brm.bindings.cuda.ActivationKernels;
import brm.bindings.cuda.DeviceBuffer;
import brm.bindings.cuda.DropoutKernels;
import brm.bindings.cuda.ElementwiseKernels;
import brm.bindings.cuda.EmbeddingKernels;
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
import static brm.backend.OpChecks.checkNorm;
import static brm.backend.OpChecks.checkAttention;
import static brm.backend.OpChecks.checkCache;
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
 * The same class runs on the CPU emulator (libbrm_cuda_emu.so), which is how its tests run without a GPU.
 */
public final class CudaBackend implements Backend {
    private static final Cleaner CLEANER = Cleaner.create();

    private final Cuda cuda;
    private final ElementwiseKernels elementwise;
    private final LayerNormKernels layerNormKernels;
    private final RmsNormKernels rmsNormKernels;
    private final ActivationKernels activation;
    private final RotaryKernels rotaryKernels;
    private final EmbeddingKernels embedding;
    private final PoolingKernels pooling;
    private final DropoutKernels dropoutKernels;
    private final AttentionKernels attentionKernels;
    /** Device buffers not yet freed, so that close() frees what the cleaner has not. */
    private final Set<DeviceBuffer> live = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));
    private PinnedBuffer staging;
    private DeviceInts packingStarts, packingPositions, scratchInts;
    private Packing uploadedPacking;
    /** attentionBackward's per-(row, head) log-sum-exp and Δ, grown on demand. */
    private CudaTensor attentionStats;
    private boolean closed;

    public CudaBackend(Cuda cuda) {
        this.cuda = cuda;
        this.elementwise = new ElementwiseKernels(cuda);
        this.layerNormKernels = new LayerNormKernels(cuda);
        this.rmsNormKernels = new RmsNormKernels(cuda);
        this.activation = new ActivationKernels(cuda);
        this.rotaryKernels = new RotaryKernels(cuda);
        this.embedding = new EmbeddingKernels(cuda);
        this.pooling = new PoolingKernels(cuda);
        this.dropoutKernels = new DropoutKernels(cuda);
        this.attentionKernels = new AttentionKernels(cuda);
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

    /** Device storage shared by a tensor and its firstRows views; the cleaner frees it when none is reachable. */
    private static final class Storage {
        DeviceBuffer buffer;  // set once, right after the Storage exists (it is the cleaner's owner)
    }

    static final class CudaTensor implements Tensor {
        final Storage storage;
        final int rows, cols;

        CudaTensor(Storage storage, int rows, int cols) {
            this.storage = storage;
            this.rows = rows;
            this.cols = cols;
        }

        @Override
        public int rows() { return rows; }

        @Override
        public int cols() { return cols; }

        @Override
        public Tensor firstRows(int rows) {
            if (rows < 0 || rows > this.rows) throw new IllegalArgumentException("tensor has " + this.rows + " rows, not " + rows);
            return new CudaTensor(storage, rows, cols);
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
            if (staging != null) staging.close();
            staging = cuda.allocatePinned(Math.max(bytes, staging == null ? 1 << 20 : 2 * staging.segment().byteSize()));
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
        MemorySegment host = staging(4L * values.length);
        MemorySegment.copy(values, 0, host, JAVA_FLOAT, 0, values.length);
        cuda.copyToDevice(c.address(), host, 4L * values.length);
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

    /** An int array on the device, grown on demand and reused: packing offsets, token ids, cache slots. */
    private final class DeviceInts {
        private DeviceBuffer buffer;
        private final Object owner = new Object();

        MemorySegment upload(int[] values) {
            long bytes = 4L * Math.max(values.length, 1);
            if (buffer == null || buffer.bytes() < bytes) {
                if (buffer != null && live.remove(buffer)) buffer.close();
                buffer = deviceMemory(Math.max(bytes, 4096), owner);
            }
            MemorySegment host = staging(bytes);
            MemorySegment.copy(values, 0, host, JAVA_INT, 0, values.length);
            cuda.copyToDevice(buffer.address(), host, 4L * values.length);
            return buffer.address();
        }
    }

    /** The batch's sequence starts [seqs+1] and row positions [tokens] on the device, uploaded once per Packing. */
    record DevicePacking(MemorySegment starts, MemorySegment positions) {}

    DevicePacking devicePacking(Packing p) {
        if (packingStarts == null) {
            packingStarts = new DeviceInts();
            packingPositions = new DeviceInts();
        }
        if (p != uploadedPacking) {
            packingStarts.upload(p.starts());
            packingPositions.upload(p.positions());
            uploadedPacking = p;
        }
        return new DevicePacking(packingStarts.buffer.address(), packingPositions.buffer.address());
    }

    /** {@code values} on the device until the next call (token ids, slots). */
    MemorySegment deviceInts(int[] values) {
        if (scratchInts == null) scratchInts = new DeviceInts();
        return scratchInts.upload(values);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        sameShape("add", a, out);
        sameShape("add", b, out);
        elementwise.add(cuda(a).address(), cuda(b).address(), cuda(out).address(), cuda(out).size());
    }

    private static UnsupportedOperationException notYet(String op) {
        return new UnsupportedOperationException(op + " is not on the CUDA backend yet");
    }

    @Override
    public Weight weight(float[] w, float[] bias, int out, int in, boolean backward) {
        throw notYet("weight");
    }

    @Override
    public void linear(Tensor x, Weight w, Lora lora, Tensor y) {
        throw notYet("linear");
    }

    @Override
    public void linearBackward(Tensor x, Weight w, Lora lora, Tensor dy, Tensor dx, Tensor dA, Tensor dB) {
        throw notYet("linearBackward");
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, float alpha, float beta, Tensor c) {
        throw notYet("matmul");
    }

    @Override
    public void segmentOuter(Packing p, Tensor a, Tensor b, float alpha, Tensor out) {
        throw notYet("segmentOuter");
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
        sameShape("geluBackward", x, dy);
        sameShape("geluBackward", x, dx);
        activation.geluBackward(cuda(x).address(), cuda(dy).address(), cuda(dx).address(), cuda(dx).size());
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        sameShape("siluMul", gate, up);
        sameShape("siluMul", gate, out);
        activation.siluMul(cuda(gate).address(), cuda(up).address(), cuda(out).address(), cuda(out).size());
    }

    @Override
    public void siluMulBackward(Tensor gate, Tensor up, Tensor dy, Tensor dGate, Tensor dUp) {
        sameShape("siluMulBackward", gate, up);
        sameShape("siluMulBackward", gate, dy);
        sameShape("siluMulBackward", gate, dGate);
        sameShape("siluMulBackward", gate, dUp);
        activation.siluMulBackward(cuda(gate).address(), cuda(up).address(), cuda(dy).address(), cuda(dGate).address(), cuda(dUp).address(),
                cuda(gate).size());
    }

    @Override
    public void rotary(Packing p, Heads heads, int dims, Tensor cos, Tensor sin, boolean inverse) {
        int half = dims / 2;
        check(dims % 2 == 0 && dims <= heads.dim() && cos.cols() == half && sin.cols() == half && cos.rows() == sin.rows()
                        && heads.tensor().rows() == p.tokens(),
                "rotary over " + dims + " of " + heads.dim() + " dims, tables [" + cos.rows() + ", " + cos.cols() + "]");
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
        for (Tensor in : inputs) check(cuda(in).storage != cuda(out).storage, op + ": an output shares storage with an input");
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
