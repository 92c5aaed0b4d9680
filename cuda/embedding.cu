// Embedding lookups, one thread per element of the output rows:
//   embed         out[r, c] = table[ids[r], c]                 (token embeddings)
//   add_positions x[r, c] += table[positions[r], c]            (learned absolute positions, GPT-2 style)
// The ids and positions are checked against the table by the caller.
#include "brm_cuda.cuh"

static constexpr int THREADS = 256;

// ids [rows], table [vocab, cols] -> out [rows, cols]
__global__ void embed_kernel(const int* ids, const float* table, float* out, int rows, int cols) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) rows * cols) return;
    long long r = i / cols;
    out[i] = table[(long long) ids[r] * cols + (i - r * cols)];
}

// positions [rows], table [maxPositions, cols], x [rows, cols] +=
__global__ void add_positions_kernel(const int* positions, const float* table, float* x, int rows, int cols) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) rows * cols) return;
    long long r = i / cols;
    x[i] += table[(long long) positions[r] * cols + (i - r * cols)];
}

// ids [rows] (device), table [vocab, cols] -> out [rows, cols]
BRM_API int brm_embed(const int* ids, const float* table, float* out, int rows, int cols) {
    long long n = (long long) rows * cols;
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(embed_kernel, brm_blocks(n, THREADS), THREADS, 0, ids, table, out, rows, cols);
    return brm_launch_status();
}

// positions [rows] (device), table [maxPositions, cols] -> x [rows, cols] += the table row at each row's position
BRM_API int brm_add_positions(const int* positions, const float* table, float* x, int rows, int cols) {
    long long n = (long long) rows * cols;
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(add_positions_kernel, brm_blocks(n, THREADS), THREADS, 0, positions, table, x, rows, cols);
    return brm_launch_status();
}
