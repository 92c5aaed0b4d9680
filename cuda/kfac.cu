// K-FAC factor accumulation on the device: one factor M [n, n] of a LoRA layer summed over a fit's batches,
//
//   M_ij += scale² · Σ_k V_ki · V_kj        V [b, n]: the batch's K-FAC rows (FP32), M: FP64
//
// (the rows are per-token inputs/gradients or their per-sequence pools, made by the backend's pool op as
// brm.laplace.Tokens says). A product of two floats is exact in double, so each batch adds its exact
// products with one double rounding per FMA: over the thousands of batches of a fit nothing of FP32's
// 1e-7 relative rounding accumulates, and the factor stays on the device until the fit ends (one download).
//
// M is symmetric: only the 64×64 tiles on or below the diagonal are accumulated (the lower triangle is
// the factor; diagonal tiles are computed whole), and brm_kfac_mirror copies it onto the upper triangle
// once before the download. Each block owns one tile and loops over the batch's rows in chunks of 16,
// staged in shared memory; each of its 256 threads keeps a 4×4 micro-tile of FP64 sums at rows ty+16p,
// columns tx+16q, so a warp's shared reads are broadcasts or conflict-free and its global writes are runs
// of 16 consecutive doubles. Blocks own disjoint tiles: no atomics, and the sums are deterministic.
#include "brm_cuda.cuh"

constexpr int KFAC_TILE = 64, KFAC_CHUNK = 16, KFAC_THREADS = 256;

// V [b, n] rows of the chunk starting at row k0, columns c0.. of the tile -> panel [KFAC_CHUNK][KFAC_TILE], 0 outside V
__device__ __forceinline__ void kfac_stage(const float* v, int b, int n, int k0, int c0, float (*panel)[KFAC_TILE]) {
    for (int e = threadIdx.x; e < KFAC_CHUNK * KFAC_TILE; e += KFAC_THREADS) {
        int k = e / KFAC_TILE, c = e % KFAC_TILE;
        panel[k][c] = k0 + k < b && c0 + c < n ? v[(long long) (k0 + k) * n + c0 + c] : 0.0f;
    }
}

// v [b, n], m [n, n]: the tile (blockIdx.y, blockIdx.x) of m += scale2 · vᵀ·v, tiles above the diagonal skipped
__global__ void __launch_bounds__(KFAC_THREADS) kfac_accumulate_kernel(const float* v, int b, int n, double scale2, double* m) {
    if (blockIdx.x > blockIdx.y) return;  // the whole block leaves before any barrier
    __shared__ float rows[KFAC_CHUNK][KFAC_TILE], cols[KFAC_CHUNK][KFAC_TILE];
    int r0 = blockIdx.y * KFAC_TILE, c0 = blockIdx.x * KFAC_TILE;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    double acc[4][4] = {};
    for (int k0 = 0; k0 < b; k0 += KFAC_CHUNK) {
        kfac_stage(v, b, n, k0, r0, rows);
        kfac_stage(v, b, n, k0, c0, cols);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < KFAC_CHUNK; k++) {
            double x[4], y[4];
#pragma unroll
            for (int p = 0; p < 4; p++) x[p] = rows[k][ty + 16 * p];
#pragma unroll
            for (int q = 0; q < 4; q++) y[q] = cols[k][tx + 16 * q];
#pragma unroll
            for (int p = 0; p < 4; p++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[p][q] = fma(x[p], y[q], acc[p][q]);
        }
        __syncthreads();
    }
    for (int p = 0; p < 4; p++) {
        int i = r0 + ty + 16 * p;
        if (i >= n) continue;
        for (int q = 0; q < 4; q++) {
            int j = c0 + tx + 16 * q;
            if (j < n) m[(long long) i * n + j] += scale2 * acc[p][q];
        }
    }
}

// m [n, n]: m_ij = m_ji for j > i (the lower triangle onto the upper)
__global__ void kfac_mirror_kernel(double* m, int n) {
    long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long long) n * n) return;
    int i = (int) (e / n), j = (int) (e % n);
    if (j > i) m[e] = m[(long long) j * n + i];
}

// rows [b, n] (FP32), m [n, n] (FP64): the lower triangle of m += scale²·rowsᵀ·rows (the upper one is left stale)
BRM_API int brm_kfac_accumulate(const float* rows, int b, int n, float scale, double* m) {
    unsigned tiles = brm_blocks(n, KFAC_TILE);
    if (b > 0 && n > 0) BRM_LAUNCH(kfac_accumulate_kernel, dim3(tiles, tiles), KFAC_THREADS, 0, rows, b, n, (double) scale * scale, m);
    return brm_launch_status();
}

// m [n, n]: the upper triangle = the lower one, so m is the full symmetric factor
BRM_API int brm_kfac_mirror(double* m, int n) {
    long long elements = (long long) n * n;
    if (n > 1) BRM_LAUNCH(kfac_mirror_kernel, brm_blocks(elements, 256), 256, 0, m, n);
    return brm_launch_status();
}
