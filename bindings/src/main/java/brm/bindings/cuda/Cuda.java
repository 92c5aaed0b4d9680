package brm.bindings.cuda;

import brm.bindings.CheckedCall;
import brm.bindings.NativeException;
import brm.bindings.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * brm's CUDA library (cuda/runtime.cu and the kernel files), opened once: the device, memory and copies.
 * The kernel families bind their own entry points from it ({@link #bind}); every call that returns a
 * non-zero CUDA status throws a {@link NativeException} naming the C function and the CUDA error.
 * The same ABI is served by libbrm_cuda.so (a GPU) and libbrm_cuda_emu.so (the CPU emulator that runs the
 * same kernel sources in tests on machines without a GPU).
 */
public final class Cuda {
    private static final FunctionDescriptor STATUS_INT_POINTER = FunctionDescriptor.of(JAVA_INT, ADDRESS);
    private static final FunctionDescriptor STATUS_POINTER_LONG = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG);
    private static final FunctionDescriptor STATUS_COPY = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG);

    private final NativeLibrary library;
    private final MethodHandle errorString;   // const char* brm_error_string(int status)
    private final MethodHandle malloc;        // int brm_malloc(void** pointer, long long bytes)
    private final MethodHandle free;          // int brm_free(void* pointer)
    private final MethodHandle hostAlloc;     // int brm_host_alloc(void** pointer, long long bytes)
    private final MethodHandle hostFree;      // int brm_host_free(void* pointer)
    private final MethodHandle toDevice;      // int brm_copy_to_device(void* device, const void* host, long long bytes)
    private final MethodHandle toHost;        // int brm_copy_to_host(void* host, const void* device, long long bytes)
    private final MethodHandle onDevice;      // int brm_copy_on_device(void* to, const void* from, long long bytes)
    private final MethodHandle zero;          // int brm_zero(void* pointer, long long bytes)
    private final MethodHandle synchronize;   // int brm_synchronize(void)
    private final boolean emulator;
    private final String deviceName;

    private Cuda(NativeLibrary library) {
        this.library = library;
        errorString = library.downcall("brm_error_string", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        malloc = library.downcall("brm_malloc", STATUS_POINTER_LONG);
        free = library.downcall("brm_free", STATUS_INT_POINTER);
        hostAlloc = library.downcall("brm_host_alloc", STATUS_POINTER_LONG);
        hostFree = library.downcall("brm_host_free", STATUS_INT_POINTER);
        toDevice = library.downcall("brm_copy_to_device", STATUS_COPY);
        toHost = library.downcall("brm_copy_to_host", STATUS_COPY);
        onDevice = library.downcall("brm_copy_on_device", STATUS_COPY);
        zero = library.downcall("brm_zero", STATUS_POINTER_LONG);
        synchronize = library.downcall("brm_synchronize", FunctionDescriptor.of(JAVA_INT));
        try (Arena arena = Arena.ofConfined()) {
            // int brm_device_count(int* count)
            MemorySegment count = arena.allocate(JAVA_INT);
            check("brm_device_count", (int) library.downcall("brm_device_count", STATUS_INT_POINTER).invokeExact(count));
            if (count.get(JAVA_INT, 0) < 1) throw new NativeException("brm_device_count: no CUDA device");
            // int brm_is_emulator(void)
            emulator = (int) library.downcall("brm_is_emulator", FunctionDescriptor.of(JAVA_INT)).invokeExact() == 1;
            // int brm_device_name(char* name, int capacity)
            MemorySegment name = arena.allocate(256);
            check("brm_device_name", (int) library.downcall("brm_device_name", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT))
                    .invokeExact(name, 256));
            deviceName = name.getString(0);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeException(library.name() + ": " + t);
        }
    }

    /**
     * Opens the library at {@code path} and checks that a device answers; empty when the file does not exist.
     * Throws {@link NativeException} when it exists but cannot be used (no driver, no device), naming why.
     */
    public static Optional<Cuda> open(Path path) {
        return NativeLibrary.open(path).map(Cuda::new);
    }

    public String libraryName() {
        return library.name();
    }

    /** The device in words: its name, compute capability and memory, or that this is the emulator. */
    public String deviceName() {
        return deviceName;
    }

    /** Whether the library is the CPU emulator rather than a GPU. */
    public boolean emulator() {
        return emulator;
    }

    /** Binds an entry point of the library; {@code descriptor} must match its C prototype. */
    public MethodHandle bind(String function, FunctionDescriptor descriptor) {
        return library.downcall(function, descriptor);
    }

    /** Throws unless {@code status} is 0, naming the function and the CUDA error. */
    public void check(String function, int status) {
        CheckedCall.check(function, status, this::describe);
    }

    private String describe(int status) {
        try {
            return ((MemorySegment) errorString.invokeExact(status)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return null;
        }
    }

    /** Device memory [bytes], contents undefined. */
    public DeviceBuffer allocate(long bytes) {
        return new DeviceBuffer(this, allocate("brm_malloc", malloc, bytes), bytes);
    }

    /** Page-locked host memory [bytes], for transfers. */
    public PinnedBuffer allocatePinned(long bytes) {
        return new PinnedBuffer(this, allocate("brm_host_alloc", hostAlloc, bytes).reinterpret(bytes));
    }

    private MemorySegment allocate(String function, MethodHandle handle, long bytes) {
        if (bytes < 0) throw new IllegalArgumentException(function + ": negative size " + bytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(function, (int) handle.invokeExact(out, Math.max(bytes, 1L)));
            return out.get(ADDRESS, 0);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeException(function + ": " + t);
        }
    }

    void free(MemorySegment device) {
        call("brm_free", () -> (int) free.invokeExact(device));
    }

    void freePinned(MemorySegment host) {
        call("brm_host_free", () -> (int) hostFree.invokeExact(host));
    }

    /** device [bytes] = host [bytes]. */
    public void copyToDevice(MemorySegment device, MemorySegment host, long bytes) {
        call("brm_copy_to_device", () -> (int) toDevice.invokeExact(device, host, bytes));
    }

    /** host [bytes] = device [bytes], after the kernels before it. */
    public void copyToHost(MemorySegment host, MemorySegment device, long bytes) {
        call("brm_copy_to_host", () -> (int) toHost.invokeExact(host, device, bytes));
    }

    /** to [bytes] = from [bytes] on the device. */
    public void copyOnDevice(MemorySegment to, MemorySegment from, long bytes) {
        call("brm_copy_on_device", () -> (int) onDevice.invokeExact(to, from, bytes));
    }

    /** device [bytes] = 0. */
    public void zero(MemorySegment device, long bytes) {
        call("brm_zero", () -> (int) zero.invokeExact(device, bytes));
    }

    /** Waits for every kernel so far; reports a fault in any of them. */
    public void synchronize() {
        call("brm_synchronize", () -> (int) synchronize.invokeExact());
    }

    /** Runs a downcall returning a CUDA status and checks it, naming {@code function} and the CUDA error on failure. */
    public void call(String function, CheckedCall.StatusCall call) {
        CheckedCall.run(function, call, this::describe);
    }
}
