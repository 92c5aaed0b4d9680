// A CPU emulator for brm's CUDA kernels, so that every kernel runs and is tested on machines without a GPU.
//
// The same .cu sources are compiled as C++ with -DBRM_EMULATE (CMake builds libbrm_cuda_emu.so beside
// libbrm_cuda.so) and this header stands in for the CUDA runtime and device intrinsics:
//   - device memory is host memory: cudaMalloc returns a host allocation filled with 0xFF bytes (NaN as
//     float), so a kernel that reads memory nobody wrote gives NaN instead of a plausible number;
//   - a launch runs the grid's blocks one after another on the calling OS thread; each CUDA thread of a
//     block is a fiber (ucontext) that runs until it reaches a barrier (__syncthreads, a warp shuffle,
//     __syncwarp) and the scheduler resumes the fibers once every live thread of the block (or warp) has
//     arrived. A barrier that not all live threads reach (a __syncthreads in divergent code), a warp-wide
//     operation (shuffle, __syncwarp, wmma) that a lane has returned before, or a __trap(), prints where and
//     fails the launch (cudaErrorLaunchFailure) instead of hanging;
//   - __shared__ variables are function statics (one block runs at a time; launches from several OS threads
//     take turns), dynamic shared memory a per-launch buffer filled with 0xFF before each block;
//   - tensor-core fragments (nvcuda::wmma) hold the whole tile in every thread: their per-thread layout is
//     opaque in CUDA, so kernels may only touch fragments through the wmma functions and whole-fragment
//     loops over num_elements, and both stay correct here.
//   - between barriers the threads of a block run one after another, in index order, or in reverse order with
//     BRM_EMULATOR_ORDER=reverse: a kernel whose result changes with the order reads what another thread
//     writes without a barrier between them (a race), which running the tests both ways shows.
// What it cannot show: timing, races that both orders hide, and the register/shared-memory limits of a GPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <math.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x = 1, unsigned y = 1, unsigned z = 1) : x(x), y(y), z(z) {}
};

struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

namespace brm_emu {
// the running fiber's coordinates, set by the scheduler before it resumes a fiber
extern thread_local dim3 thread_index, block_index, block_dim, grid_dim;

void launch(dim3 grid, dim3 block, size_t dynamic_shared_bytes, const std::function<void()>& body);
void sync_block();
void sync_warp();
unsigned char* dynamic_shared();
uint64_t* exchange_slots();  // one 8-byte slot per thread of the block, for warp shuffles
int linear_thread();
void trap(const char* what);

template <class T>
T shuffle_from(T value, int source_lane) {
    static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
    uint64_t* slots = exchange_slots();
    int self = linear_thread();
    std::memcpy(&slots[self], &value, sizeof(T));
    sync_warp();
    T result;
    std::memcpy(&result, &slots[(self & ~31) + source_lane], sizeof(T));
    sync_warp();
    return result;
}
}  // namespace brm_emu

#define threadIdx (brm_emu::thread_index)
#define blockIdx (brm_emu::block_index)
#define blockDim (brm_emu::block_dim)
#define gridDim (brm_emu::grid_dim)
constexpr int warpSize = 32;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static
#define __restrict__ __restrict
#define __align__(n) alignas(n)
#define __syncthreads() brm_emu::sync_block()
#define __syncwarp(...) brm_emu::sync_warp()
#define __trap() brm_emu::trap("__trap")

// BRM_LAUNCH(kernel, grid, block, shared bytes, args...): kernel<<<grid, block, shared>>>(args...)
#define BRM_LAUNCH(kernel, grid, block, shared, ...) \
    brm_emu::launch(dim3(grid), dim3(block), (shared), [=] { kernel(__VA_ARGS__); })
#define BRM_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(brm_emu::dynamic_shared())

template <class T> inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
    int lane = brm_emu::linear_thread() & 31;
    return brm_emu::shuffle_from(v, (lane / width) * width + (src % width));
}
template <class T> inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
    int lane = brm_emu::linear_thread() & 31;
    int src = lane ^ mask;
    return brm_emu::shuffle_from(v, src / width == lane / width ? src : lane);
}
template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = brm_emu::linear_thread() & 31;
    int src = lane + (int) delta;
    return brm_emu::shuffle_from(v, src / width == lane / width ? src : lane);
}
template <class T> inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = brm_emu::linear_thread() & 31;
    int src = lane - (int) delta;
    return brm_emu::shuffle_from(v, src >= 0 && src / width == lane / width ? src : lane);
}

// one OS thread runs a whole block between barriers, so a read-modify-write is atomic
template <class T> inline T atomicAdd(T* address, T value) { T old = *address; *address = old + value; return old; }
template <class T> inline T atomicMax(T* address, T value) { T old = *address; *address = std::max(old, value); return old; }
template <class T> inline T atomicMin(T* address, T value) { T old = *address; *address = std::min(old, value); return old; }
template <class T> inline T atomicExch(T* address, T value) { T old = *address; *address = value; return old; }
template <class T> inline T atomicCAS(T* address, T compare, T value) { T old = *address; if (old == compare) *address = value; return old; }

inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return std::min(1.0f, std::max(0.0f, x)); }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
template <class T> inline T __ldg(const T* p) { return *p; }
using std::exp; using std::log; using std::sqrt; using std::fabs; using std::erf; using std::tanh; using std::fma;

// 16-bit floating point: storage types with round-to-nearest-even conversions, as cuda_bf16.h / cuda_fp16.h
struct __nv_bfloat16 { uint16_t bits; };
struct __half { uint16_t bits; };
inline float __bfloat162float(__nv_bfloat16 h) { return __uint_as_float((unsigned) h.bits << 16); }
inline __nv_bfloat16 __float2bfloat16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t) ((u >> 16) | 0x40)};  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return {(uint16_t) (u >> 16)};
}
inline float __half2float(__half h) { _Float16 v; std::memcpy(&v, &h.bits, 2); return (float) v; }
inline __half __float2half(float f) { _Float16 v = (_Float16) f; __half h; std::memcpy(&h.bits, &v, 2); return h; }

// the runtime API brm uses, over host memory
using cudaError_t = int;
using cudaStream_t = void*;
constexpr cudaError_t cudaSuccess = 0;
constexpr cudaError_t cudaErrorInvalidValue = 1;
constexpr cudaError_t cudaErrorMemoryAllocation = 2;
constexpr cudaError_t cudaErrorInvalidConfiguration = 9;
constexpr cudaError_t cudaErrorLaunchFailure = 719;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaMalloc(void** pointer, size_t bytes);
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMallocHost(void** pointer, size_t bytes);
cudaError_t cudaFreeHost(void* pointer);
cudaError_t cudaDeviceSynchronize();
inline cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind) { std::memmove(to, from, bytes); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind kind, cudaStream_t = nullptr) { return cudaMemcpy(to, from, bytes, kind); }
inline cudaError_t cudaMemset(void* to, int value, size_t bytes) { std::memset(to, value, bytes); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* to, int value, size_t bytes, cudaStream_t = nullptr) { return cudaMemset(to, value, bytes); }
template <class F> inline cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) { return cudaSuccess; }
// the emulator reports 2 multiprocessors, so that kernels which size their grids by it choose both ways in small tests
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) { *value = 2; return cudaSuccess; }

// cuda_pipeline.h: asynchronous global -> shared copies (cp.async) as the hardware allows them to land, at the
// latest: a thread's copies are held (the source read when issued) and written to shared memory only when a
// __pipeline_wait_prior(n) of that thread leaves at most n newer commit groups pending, so a kernel that reads a
// stage before waiting for it reads stale data here too. The last zfill bytes of a destination are zeroed.
namespace brm_emu {
void async_copy(void* dst_shared, const void* src_global, size_t bytes, size_t zfill);
void async_commit();
void async_wait(size_t newer_groups_left);
}  // namespace brm_emu
inline void __pipeline_memcpy_async(void* dst_shared, const void* src_global, size_t size_and_align, size_t zfill = 0) {
    brm_emu::async_copy(dst_shared, src_global, size_and_align, zfill);
}
inline void __pipeline_commit() { brm_emu::async_commit(); }
inline void __pipeline_wait_prior(size_t n) { brm_emu::async_wait(n); }

#include "wmma.h"
