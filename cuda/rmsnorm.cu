// RMSNorm (Llama) over the rows of x [rows, n], FP32, one warp per row:
//   forward   rstd = 1/√(Σx²/n + ε), y = x·rstd·w
//   backward  g = dy·w:  dx += rstd·(g - x·rstd²·mean(g·x))      (∂rstd/∂x_j = -rstd³·x_j/n)
// The weight is frozen, so backward gives dx alone.
#include "brm_cuda.cuh"

static constexpr int ROWS_PER_BLOCK = 8;  // one warp each

// rstd of row [n], in every lane of the warp
static __device__ __forceinline__ float rmsnorm_rstd(const float* row, int n, float eps) {
    float squares = 0.0f;
    for (int i = threadIdx.x & 31; i < n; i += 32) squares += row[i] * row[i];
    return 1.0f / sqrtf(brm_warp_sum(squares) / n + eps);
}

// x [rows, n], weight [n] -> out [rows, n]; out may be x (a lane writes only what it read)
__global__ void rmsnorm_kernel(const float* x, const float* weight, float eps, float* out, int rows, int n) {
    int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    const float* xr = x + (long long) row * n;
    float* yr = out + (long long) row * n;
    float rstd = rmsnorm_rstd(xr, n, eps);
    for (int i = threadIdx.x & 31; i < n; i += 32) yr[i] = xr[i] * rstd * weight[i];
}

// x [rows, n], weight [n], dy [rows, n] -> dx [rows, n] +=
__global__ void rmsnorm_backward_kernel(const float* x, const float* weight, float eps, const float* dy, float* dx, int rows, int n) {
    int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    long long at = (long long) row * n;
    const float *xr = x + at, *dyr = dy + at;
    float* dxr = dx + at;
    float rstd = rmsnorm_rstd(xr, n, eps), sumGX = 0.0f;
    for (int i = lane; i < n; i += 32) sumGX += dyr[i] * weight[i] * xr[i];
    float c = rstd * rstd * brm_warp_sum(sumGX) / n;
    for (int i = lane; i < n; i += 32) dxr[i] += rstd * (dyr[i] * weight[i] - xr[i] * c);
}

// x [rows, n], weight [n] -> out [rows, n]; out may be x
BRM_API int brm_rmsnorm(const float* x, const float* weight, float eps, float* out, int rows, int n) {
    if (rows == 0 || n == 0) return cudaSuccess;
    BRM_LAUNCH(rmsnorm_kernel, brm_blocks(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, x, weight, eps, out, rows, n);
    return brm_launch_status();
}

// x [rows, n], weight [n], dy [rows, n] -> dx [rows, n] += the gradient of x
BRM_API int brm_rmsnorm_backward(const float* x, const float* weight, float eps, const float* dy, float* dx, int rows, int n) {
    if (rows == 0 || n == 0) return cudaSuccess;
    BRM_LAUNCH(rmsnorm_backward_kernel, brm_blocks(rows, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, x, weight, eps, dy, dx, rows, n);
    return brm_launch_status();
}
