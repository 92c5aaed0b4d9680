package brm.bindings.cuda;

import java.lang.foreign.MemorySegment;

/** Page-locked host memory [bytes] for staging transfers (a copy from it runs at full bus speed); freed by {@link #close}. */
public final class PinnedBuffer implements AutoCloseable {
    private final Cuda cuda;
    private final MemorySegment segment;
    private boolean closed;

    PinnedBuffer(Cuda cuda, MemorySegment segment) {
        this.cuda = cuda;
        this.segment = segment;
    }

    /** The host memory, readable and writable from Java. */
    public MemorySegment segment() {
        if (closed) throw new IllegalStateException("pinned buffer used after close");
        return segment;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        cuda.freePinned(segment);
    }
}
