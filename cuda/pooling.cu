// Pooling of packed sequences: sequence s is rows [starts[s], starts[s+1]) of x [tokens, cols], T_s its length.
//   forward   out[s] = LAST x[last], FIRST x[first], SUM Σ_t x[t], MEAN Σ_t x[t] · (1/T_s)   (rows summed in order)
//   backward  dx[t] = dPooled[s] at the rows the forward read (MEAN: · 1/T_s), 0 on every other row (overwritten)
// `how` is brm.backend.Pooling's order: 0 LAST, 1 MEAN, 2 FIRST, 3 SUM.
#include "brm_cuda.cuh"

static constexpr int THREADS = 256;
enum PoolingKind { POOL_LAST = 0, POOL_MEAN = 1, POOL_FIRST = 2, POOL_SUM = 3 };

// starts [seqs+1], x [tokens, cols] -> out [seqs, cols]; one thread per (s, c)
__global__ void pool_kernel(const int* starts, int seqs, const float* x, int cols, int how, float* out) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) seqs * cols) return;
    int s = (int) (i / cols), c = (int) (i % cols), first = starts[s], end = starts[s + 1];
    float v;
    if (how == POOL_LAST) v = x[(long long) (end - 1) * cols + c];
    else if (how == POOL_FIRST) v = x[(long long) first * cols + c];
    else {
        v = 0.0f;
        for (int t = first; t < end; t++) v += x[(long long) t * cols + c];
        if (how == POOL_MEAN) v *= 1.0f / (end - first);
    }
    out[i] = v;
}

// starts [seqs+1], dPooled [seqs, cols] -> dx [tokens, cols]; one thread per element of dx, which finds its
// sequence by binary search in starts
__global__ void pool_backward_kernel(const int* starts, int seqs, int tokens, int how, const float* dPooled, float* dx, int cols) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) tokens * cols) return;
    int t = (int) (i / cols), c = (int) (i % cols), lo = 0, hi = seqs - 1;
    while (lo < hi) {  // the last s with starts[s] <= t
        int mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    int first = starts[lo], end = starts[lo + 1];
    float d = dPooled[(long long) lo * cols + c];
    float v = how == POOL_LAST ? (t == end - 1 ? d : 0.0f)
            : how == POOL_FIRST ? (t == first ? d : 0.0f)
            : how == POOL_MEAN ? d * (1.0f / (end - first))
            : d;
    dx[i] = v;
}

// starts [seqs+1] (device), x [tokens, cols] -> out [seqs, cols]
BRM_API int brm_pool(const int* starts, int seqs, const float* x, int cols, int how, float* out) {
    long long n = (long long) seqs * cols;
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(pool_kernel, brm_blocks(n, THREADS), THREADS, 0, starts, seqs, x, cols, how, out);
    return brm_launch_status();
}

// starts [seqs+1] (device), dPooled [seqs, cols] -> dx [tokens, cols] (overwritten)
BRM_API int brm_pool_backward(const int* starts, int seqs, int tokens, int how, const float* dPooled, float* dx, int cols) {
    long long n = (long long) tokens * cols;
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(pool_backward_kernel, brm_blocks(n, THREADS), THREADS, 0, starts, seqs, tokens, how, dPooled, dx, cols);
    return brm_launch_status();
}
