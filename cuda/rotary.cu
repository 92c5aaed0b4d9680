// Rotary position embedding (rotate-half convention of GPT-NeoX and Llama), in place on the first `dims`
// of every head. Heads are strided views of x [rows, cols]: head h of row r starts at r·cols + offset + h·stride,
// which covers separate projections (offset 0, stride D) and GPT-NeoX's fused qkv (stride 3D, q at 0, k at D).
// With m = dims/2, pos = positions[r], c = cos[pos, i], s = sign·sin[pos, i] for i < m:
//   (x_i, x_{i+m}) ← (x_i·c - x_{i+m}·s, x_{i+m}·c + x_i·s)
// sign = -1 rotates by the opposite angle: the inverse, which is also the backward (a rotation's transpose).
// One thread per pair (r, h, i): it reads both elements before writing them.
#include "brm_cuda.cuh"

static constexpr int THREADS = 256;

// x [rows, cols] (count heads at offset + h·stride), positions [rows], cos, sin [maxPositions, half]
__global__ void rotary_kernel(float* x, int rows, int cols, int offset, int stride, int count, int half,
                              const float* cos, const float* sin, const int* positions, float sign) {
    long long pair = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (pair >= (long long) rows * count * half) return;
    int i = (int) (pair % half);
    long long head = pair / half;
    int h = (int) (head % count), r = (int) (head / count);
    float* xh = x + (long long) r * cols + offset + (long long) h * stride;
    long long t = (long long) positions[r] * half + i;
    float c = cos[t], s = sign * sin[t], a = xh[i], b = xh[i + half];
    xh[i] = a * c - b * s;
    xh[i + half] = b * c + a * s;
}

// x [rows, cols] rotated in place on the first 2·half dims of its count heads; cos, sin [maxPositions, half];
// positions [rows] (device); inverse != 0 rotates backwards
BRM_API int brm_rotary(float* x, int rows, int cols, int offset, int stride, int count, int half,
                       const float* cos, const float* sin, const int* positions, int inverse) {
    long long pairs = (long long) rows * count * half;
    if (pairs == 0) return cudaSuccess;
    BRM_LAUNCH(rotary_kernel, brm_blocks(pairs, THREADS), THREADS, 0, x, rows, cols, offset, stride, count, half,
               cos, sin, positions, inverse ? -1.0f : 1.0f);
    return brm_launch_status();
}
