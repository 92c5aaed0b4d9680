// LayerNorm over the rows of x [rows, n], FP32, one warp per row (the row is read from global memory on
// each pass; rows of a few thousand floats stay in L1/L2 between passes):
//   forward   μ = Σx/n, σ² = Σ(x-μ)²/n (two passes: no cancellation), rstd = 1/√(σ²+ε),
//             y = (x-μ)·rstd·w + b
//   backward  x̂ = (x-μ)·rstd, g = dy·w:  dx += rstd·(g - mean(g) - x̂·mean(g·x̂))
// The weight and bias are frozen (LoRA trains adapters only), so backward gives dx alone.
#include "brm_cuda.cuh"

static constexpr int ROWS_PER_BLOCK = 8;  // one warp each

// mean and rstd of row [n] as the CPU computes them, in every lane of the warp
static __device__ __forceinline__ void layernorm_moments(const float* row, int n, float eps, float& mean, float& rstd) {
    int lane = threadIdx.x & 31;
    float sum = 0.0f;
    for (int i = lane; i < n; i += 32) sum += row[i];
    mean = brm_warp_sum(sum) / n;
    float squares = 0.0f;
    for (int i = lane; i < n; i += 32) {
        float d = row[i] - mean;
        squares += d * d;
    }
    rstd = 1.0f / sqrtf(brm_warp_sum(squares) / n + eps);
}

// x [rows, n], weight [n], bias [n] -> out [rows, n]; out may be x (a lane writes only what it read)
__global__ void layernorm_kernel(const float* x, const float* weight, const float* bias, float eps, float* out, int rows, int n) {
    int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    const float* xr = x + (long long) row * n;
    float* yr = out + (long long) row * n;
    float mean, rstd;
    layernorm_moments(xr, n, eps, mean, rstd);
    for (int i = threadIdx.x & 31; i < n; i += 32) yr[i] = (xr[i] - mean) * rstd * weight[i] + bias[i];
}

// x [rows, n], weight [n], dy [rows, n] -> dx [rows, n] +=
__global__ void layernorm_backward_kernel(const float* x, const float* weight, float eps, const float* dy, float* dx, int rows, int n) {
    int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    long long at = (long long) row * n;
    const float *xr = x + at, *dyr = dy + at;
    float* dxr = dx + at;
    float mean, rstd;
    layernorm_moments(xr, n, eps, mean, rstd);
    float sumG = 0.0f, sumGXhat = 0.0f;
    for (int i = lane; i < n; i += 32) {
        float g = dyr[i] * weight[i];
        sumG += g;
        sumGXhat += g * (xr[i] - mean) * rstd;
    }
    float meanG = brm_warp_sum(sumG) / n, meanGXhat = brm_warp_sum(sumGXhat) / n;
    for (int i = lane; i < n; i += 32) {
        float g = dyr[i] * weight[i], xhat = (xr[i] - mean) * rstd;
        dxr[i] += rstd * (g - meanG - xhat * meanGXhat);
    }
}

// x [rows, n], weight [n], bias [n] -> out [rows, n]; out may be x
BRM_API int brm_layernorm(const float* x, const float* weight, const float* bias, float eps, float* out, int rows, int n) {
    if (rows == 0 || n == 0) return cudaSuccess;
    BRM_LAUNCH(layernorm_kernel, brm_blocks(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, x, weight, bias, eps, out, rows, n);
    return brm_launch_status();
}

// x [rows, n], weight [n], dy [rows, n] -> dx [rows, n] += the gradient of x
BRM_API int brm_layernorm_backward(const float* x, const float* weight, float eps, const float* dy, float* dx, int rows, int n) {
    if (rows == 0 || n == 0) return cudaSuccess;
    BRM_LAUNCH(layernorm_backward_kernel, brm_blocks(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, x, weight, eps, dy, dx, rows, n);
    return brm_launch_status();
}
