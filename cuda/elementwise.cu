// Element-wise ops on [n] floats (any shape, contiguous): out = a + b.
#include "brm_cuda.cuh"

__global__ void add_kernel(const float* a, const float* b, float* out, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}

// a, b, out [n]; out may be a or b
BRM_API int brm_add(const float* a, const float* b, float* out, long long n) {
    BRM_LAUNCH(add_kernel, brm_blocks(n, 256), 256, 0, a, b, out, n);
    return brm_launch_status();
}
