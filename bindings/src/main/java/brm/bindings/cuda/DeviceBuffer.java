package brm.bindings.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Device memory [bytes] owned by Java: freed by {@link #close} (once). The address is never dereferenced
 * on the host; {@link #at} gives the address of a byte offset inside it, for kernel arguments.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final Cuda cuda;
    private final MemorySegment address;
    private final long bytes;
    private boolean closed;

    DeviceBuffer(Cuda cuda, MemorySegment address, long bytes) {
        this.cuda = cuda;
        this.address = address;
        this.bytes = bytes;
    }

    public long bytes() {
        return bytes;
    }

    /** The device address of the first byte. */
    public MemorySegment address() {
        if (closed) throw new IllegalStateException("device buffer of " + bytes + " bytes used after close");
        return address;
    }

    /** The device address {@code offset} bytes in. */
    public MemorySegment at(long offset) {
        if (offset < 0 || offset > bytes) throw new IndexOutOfBoundsException("offset " + offset + " in a device buffer of " + bytes + " bytes");
        return MemorySegment.ofAddress(address().address() + offset);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        cuda.free(address);
    }
}
