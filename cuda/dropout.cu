// Inverted dropout with brm.backend.DropoutMask's mask, so the GPU drops exactly the elements the CPU drops:
//   z = SplitMix64(seed + (i+1)·φ), φ = 0x9E3779B97F4A7C15 (64-bit wrap-around, as Java's long)
//   keep_i = (z >> 40)·2⁻²⁴ ≥ p       (the top 24 bits as a uniform on [0, 1), exact in float)
//   out_i = keep_i ? x_i·scale : 0,   scale = 1/(1-p) rounded to float
// One hash per element and no state, so the backward redraws the mask from the seed.
#include "brm_cuda.cuh"

static constexpr int THREADS = 256;

// whether element i survives, bit for bit DropoutMask.keep(seed, i, p)
static __device__ __forceinline__ bool dropout_keep(unsigned long long seed, long long i, float p) {
    unsigned long long z = seed + (unsigned long long) (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float) (z >> 40) * 0x1p-24f >= p;
}

// x [n] -> out [n]
__global__ void dropout_kernel(const float* x, float p, float scale, unsigned long long seed, float* out, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = dropout_keep(seed, i, p) ? x[i] * scale : 0.0f;
}

// x [n] -> out [n] = x·keep/(1-p), element i of the flattened tensor kept by DropoutMask(seed, i); out may be x
BRM_API int brm_dropout(const float* x, float p, long long seed, float* out, long long n) {
    if (n == 0) return cudaSuccess;
    float scale = 1.0f / (1.0f - p);
    BRM_LAUNCH(dropout_kernel, brm_blocks(n, THREADS), THREADS, 0, x, p, scale, (unsigned long long) seed, out, n);
    return brm_launch_status();
}
