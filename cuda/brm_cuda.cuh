// Included by every kernel file. With nvcc: the CUDA runtime, 16-bit float types, wmma and cp.async pipelines;
// compiled as C++ with -DBRM_EMULATE: the CPU emulator (emulator/emulator.h) that stands in for them, so every
// kernel also runs in the tests of machines without a GPU.
//
// Conventions of brm's entry points: `BRM_API int brm_xxx(...)` with a flat C ABI, device pointers as
// plain pointers, sizes as int (long long where a product can pass 2^31), returning the CUDA error code
// of the launch (0 = success; an asynchronous fault shows at the next synchronising call). Every kernel
// runs on the legacy default stream, so calls are ordered; copies to the host synchronise.
#pragma once

#ifdef BRM_EMULATE
#include "emulator/emulator.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>
#include <mma.h>
// BRM_LAUNCH(kernel, grid, block, shared bytes, args...): kernel<<<grid, block, shared>>>(args...);
// for a template kernel name a pointer first (auto k = kernel<64, 4>;) since the macro splits on commas.
// Dynamic shared memory starts 128-byte aligned (wmma fragments need 32 bytes, float4 16).
#define BRM_LAUNCH(kernel, grid, block, shared, ...) kernel<<<(grid), (block), (shared)>>>(__VA_ARGS__)
#define BRM_DYNAMIC_SHARED(T, name)                                     \
    extern __shared__ __align__(128) unsigned char brm_dynamic_shared_[]; \
    T* name = reinterpret_cast<T*>(brm_dynamic_shared_)
#endif

#define BRM_API extern "C" __attribute__((visibility("default")))

// the status of the launch just made (configuration errors; faults inside the kernel show later)
static inline int brm_launch_status() { return (int) cudaGetLastError(); }

static inline unsigned brm_blocks(long long work, int per_block) { return (unsigned) ((work + per_block - 1) / per_block); }

// sum of v over the 32 lanes of a warp, in every lane
__device__ __forceinline__ float brm_warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float brm_warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// sum (or max) of v over the block (blockDim.x a multiple of 32, at most 1024) in every thread; scratch: 32
// floats of shared memory. Ends with a barrier, so the scratch may be reused right after.
template <bool MAX>
__device__ __forceinline__ float brm_block_reduce(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = MAX ? brm_warp_max(v) : brm_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = MAX ? -INFINITY : 0.0f;
    for (int w = 0; w < warps; w++) total = MAX ? fmaxf(total, scratch[w]) : total + scratch[w];
    __syncthreads();
    return total;
}

__device__ __forceinline__ float brm_block_sum(float v, float* scratch) { return brm_block_reduce<false>(v, scratch); }

__device__ __forceinline__ float brm_block_max(float v, float* scratch) { return brm_block_reduce<true>(v, scratch); }
