// The emulator's scheduler and runtime (see emulator.h): blocks run in order on the calling OS thread, the
// threads of a block as fibers switched at barriers.
#include "emulator.h"

#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <ucontext.h>
#include <vector>

namespace brm_emu {
thread_local dim3 thread_index, block_index, block_dim, grid_dim;

namespace {
enum class State { ready, waits_for_warp, waits_for_block, done };

struct Copy {
    void* destination;
    std::vector<unsigned char> bytes;  // the source as read when the copy was issued, zero-filled tail included
};

struct Fiber {
    ucontext_t context;
    State state;
    dim3 index;
    std::vector<Copy> open;                  // issued since the last commit
    std::vector<std::vector<Copy>> groups;   // committed, oldest first, not yet landed
};

constexpr size_t stack_bytes = 256 * 1024;

struct Launch {
    std::vector<Fiber> fibers;
    std::vector<unsigned char> shared;
    std::vector<uint64_t> slots;
    ucontext_t scheduler;
    const std::function<void()>* body = nullptr;
    int running = -1;
    bool failed = false;  // a thread trapped or the block's barriers diverged: the launch is abandoned
};

thread_local Launch* current = nullptr;
// BRM_EMULATOR_ORDER=reverse runs a block's ready threads from the last to the first between barriers
const bool reverse_order = [] {
    const char* order = std::getenv("BRM_EMULATOR_ORDER");
    return order != nullptr && std::strcmp(order, "reverse") == 0;
}();
thread_local std::vector<std::unique_ptr<char[]>> stacks;  // kept between launches: one per thread of the widest block
thread_local cudaError_t last_error = cudaSuccess;

void run_fiber() {
    Launch& l = *current;
    (*l.body)();
    l.fibers[l.running].state = State::done;
    swapcontext(&l.fibers[l.running].context, &l.scheduler);
}

void wait(State why) {
    Launch& l = *current;
    if (!current || l.running < 0) trap("barrier outside a kernel");
    l.fibers[l.running].state = why;
    swapcontext(&l.fibers[l.running].context, &l.scheduler);
}

const char* name(State s) {
    switch (s) {
        case State::ready: return "running";
        case State::waits_for_warp: return "at a warp barrier";
        case State::waits_for_block: return "at __syncthreads";
        default: return "exited";
    }
}

// releases the threads whose barrier every live thread of its group has reached; false when none can go on
bool release(Launch& l) {
    int n = (int) l.fibers.size();
    bool released = false;
    for (int w = 0; w < n; w += 32) {
        int lanes = std::min(n, w + 32) - w, live = 0, waiting = 0;
        for (int t = w; t < w + lanes; t++) {
            live += l.fibers[t].state != State::done;
            waiting += l.fibers[t].state == State::waits_for_warp;
        }
        if (waiting > 0 && live < lanes) {
            // a full-mask shuffle, __syncwarp or wmma op needs every lane of the warp: on a GPU one that has
            // returned never arrives (a hang or undefined results), so a kernel must not return before them
            std::fprintf(stderr, "brm emulator: warp %d of block (%u,%u,%u) reaches a warp-wide operation after %d of its lanes returned\n",
                         w / 32, block_index.x, block_index.y, block_index.z, lanes - live);
            l.failed = true;
            return true;
        }
        if (live > 0 && waiting == live) {
            for (int t = w; t < std::min(n, w + 32); t++)
                if (l.fibers[t].state == State::waits_for_warp) l.fibers[t].state = State::ready;
            released = true;
        }
    }
    if (released) return true;
    int live = 0, waiting = 0;
    for (auto& f : l.fibers) {
        live += f.state != State::done;
        waiting += f.state == State::waits_for_block;
    }
    if (live == 0 || waiting != live) return false;
    for (auto& f : l.fibers)
        if (f.state == State::waits_for_block) f.state = State::ready;
    return true;
}
}  // namespace

// like a device-side fault: the message on stderr, the launch abandoned (its fibers never resume) and the
// error reported by cudaGetLastError, so the caller sees a failed kernel instead of a dead process
void trap(const char* what) {
    std::fprintf(stderr, "brm emulator: %s in block (%u,%u,%u) thread (%u,%u,%u)\n", what, block_index.x, block_index.y,
                 block_index.z, thread_index.x, thread_index.y, thread_index.z);
    if (!current || current->running < 0) std::abort();
    current->failed = true;
    swapcontext(&current->fibers[current->running].context, &current->scheduler);
}

// __shared__ variables are process-wide statics: launches from several OS threads take turns
static std::mutex launches;

void launch(dim3 grid, dim3 block, size_t dynamic_shared_bytes, const std::function<void()>& body) {
    size_t threads = (size_t) block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
        grid.z > 65535 || dynamic_shared_bytes > 227 * 1024) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    std::lock_guard<std::mutex> one_at_a_time(launches);
    Launch l;
    l.body = &body;
    l.fibers.resize(threads);
    while (stacks.size() < threads) stacks.emplace_back(new char[stack_bytes]);
    l.shared.resize(std::max<size_t>(dynamic_shared_bytes, 16));
    l.slots.resize(threads);
    if (current) trap("launch from inside a kernel");
    current = &l;
    block_dim = block;
    grid_dim = grid;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                block_index = dim3(bx, by, bz);
                std::fill(l.shared.begin(), l.shared.end(), 0xFF);
                for (size_t t = 0; t < threads; t++) {
                    Fiber& f = l.fibers[t];
                    f.index = dim3(t % block.x, t / block.x % block.y, t / ((size_t) block.x * block.y));
                    f.state = State::ready;
                    f.open.clear();
                    f.groups.clear();
                    getcontext(&f.context);
                    f.context.uc_stack.ss_sp = stacks[t].get();
                    f.context.uc_stack.ss_size = stack_bytes;
                    f.context.uc_link = nullptr;
                    makecontext(&f.context, run_fiber, 0);
                }
                for (;;) {
                    for (size_t i = 0; i < threads; i++) {
                        size_t t = reverse_order ? threads - 1 - i : i;
                        if (l.fibers[t].state != State::ready) continue;
                        l.running = (int) t;
                        thread_index = l.fibers[t].index;
                        swapcontext(&l.scheduler, &l.fibers[t].context);
                        if (l.failed) break;
                    }
                    l.running = -1;
                    if (l.failed) {
                        current = nullptr;
                        last_error = cudaErrorLaunchFailure;
                        return;
                    }
                    bool all_done = std::all_of(l.fibers.begin(), l.fibers.end(), [](const Fiber& f) { return f.state == State::done; });
                    if (all_done) break;
                    bool progress = release(l);
                    if (l.failed) {
                        current = nullptr;
                        last_error = cudaErrorLaunchFailure;
                        return;
                    }
                    if (!progress) {
                        std::fprintf(stderr, "brm emulator: barrier divergence in block (%u,%u,%u):", bx, by, bz);
                        for (size_t t = 0; t < threads && t < 64; t++) std::fprintf(stderr, " %zu %s;", t, name(l.fibers[t].state));
                        std::fprintf(stderr, "\n");
                        current = nullptr;
                        last_error = cudaErrorLaunchFailure;
                        return;
                    }
                }
            }
    current = nullptr;
}

void async_copy(void* dst_shared, const void* src_global, size_t bytes, size_t zfill) {
    if (!current || current->running < 0) trap("cp.async outside a kernel");
    Copy c{dst_shared, std::vector<unsigned char>(bytes, 0)};
    std::memcpy(c.bytes.data(), src_global, bytes - zfill);
    current->fibers[current->running].open.push_back(std::move(c));
}

void async_commit() {
    Fiber& f = current->fibers[current->running];
    f.groups.push_back(std::move(f.open));
    f.open.clear();
}

void async_wait(size_t newer_groups_left) {
    Fiber& f = current->fibers[current->running];
    while (f.groups.size() > newer_groups_left) {
        for (Copy& c : f.groups.front()) std::memcpy(c.destination, c.bytes.data(), c.bytes.size());
        f.groups.erase(f.groups.begin());
    }
}

void sync_block() { wait(State::waits_for_block); }
void sync_warp() { wait(State::waits_for_warp); }
unsigned char* dynamic_shared() { return current->shared.data(); }
uint64_t* exchange_slots() { return current->slots.data(); }
int linear_thread() { return current->running; }
}  // namespace brm_emu

cudaError_t cudaGetLastError() {
    cudaError_t e = brm_emu::last_error;
    brm_emu::last_error = cudaSuccess;
    return e;
}

const char* cudaGetErrorString(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorLaunchFailure: return "unspecified launch failure";
        default: return "unknown error";
    }
}

cudaError_t cudaGetDeviceCount(int* count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
    // exactly the bytes asked for (a sanitizer build then sees a kernel's out-of-bounds access), 256-byte aligned as cudaMalloc's
    if (bytes > (size_t) 1 << 50 || posix_memalign(pointer, 256, std::max<size_t>(bytes, 1)) != 0) {
        *pointer = nullptr;
        return cudaErrorMemoryAllocation;
    }
    std::memset(*pointer, 0xFF, bytes);  // NaN: a kernel reading memory nobody wrote shows it
    return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
    std::free(pointer);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** pointer, size_t bytes) { return cudaMalloc(pointer, bytes); }
cudaError_t cudaFreeHost(void* pointer) { return cudaFree(pointer); }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
