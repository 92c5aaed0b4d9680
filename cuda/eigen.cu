// Symmetric eigendecomposition in FP64 by parallel cyclic Jacobi: A [n, n] = V·Λ·Vᵀ, V orthogonal.
//
// A Jacobi rotation on the plane (p, q) zeroes a_pq (Rutishauser's form, as Numerical Recipes):
//   θ = (a_qq − a_pp) / (2·a_pq),   t = sign(θ) / (|θ| + √(θ² + 1)),   c = 1/√(t² + 1),   s = t·c
//   A ← Pᵀ·A·P, V ← V·P with P = I except P_pp = P_qq = c, P_pq = s, P_qp = −s:
//   columns  a_kp ← c·a_kp − s·a_kq,  a_kq ← s·a_kp + c·a_kq,  then the same on rows
//   so a_pp ← a_pp − t·a_pq, a_qq ← a_qq + t·a_pq, a_pq ← 0.
// Rotations on disjoint planes commute, so a round rotates n/2 planes at once: the round-robin (circle
// method) pairing of round t over np = n rounded up to even players (player np−1 fixed, the others on a
// circle of np−1):  pair 0 = (t, np−1),  pair k = ((t + k) mod (np−1), (t − k) mod (np−1)),  k = 1 … np/2−1,
// and np−1 rounds (a sweep) pair every two indices once. For odd n the extra index is a virtual zero row
// and column: its rotations are the identity. Each 2×2 block of A at the planes (a, b) of two pairs is
// read and written by one thread, A'_blk = P_aᵀ·A_blk·P_b, so a round updates A in place; the block
// (a, a) takes the exact a_pp, a_qq above and a_pq = 0.
// A plane is left alone (identity) when |a_pq| ≤ ε·√|a_pp|·√|a_qq| (the relative threshold of Demmel and
// Veselić, which keeps small eigenvalues of a PSD factor to high relative accuracy), a_pq is below the
// smallest normal double or below 1e-150·|a_qq − a_pp| (a rotation by less than 1e-150, where θ² would
// overflow); a sweep without any rotation ends the iteration (quadratic convergence: about 6–10 sweeps). At the end the eigenvalues (the diagonal) are sorted ascending, ties by index, and the
// columns of V with them.
//
// Two forms:
//   brm_eigen_jacobi_batched  many small matrices (n ≤ 64: the r×r factors), one block each, A and V in
//                             shared memory, a round = rotations, barrier, updates, barrier
//   brm_eigen_jacobi          one large matrix (n up to a few thousand) in global memory: a round is two
//                             launches (the rotations of its pairs, then the block updates of A and V);
//                             pair indices are consecutive in k, so a warp's accesses are nearly coalesced;
//                             a pair of identity rotations skips its block, so late sweeps move little data.
#include <cfloat>

#include "brm_cuda.cuh"

constexpr int EIGEN_SMALL_MAX = 64, EIGEN_SMALL_THREADS = 256;

// the planes (p, q) of pair k in round t over np players (np even, np ≥ 2)
__device__ __forceinline__ void jacobi_pair(int k, int t, int np, int* p, int* q) {
    int circle = np - 1;
    if (k == 0) {
        *p = t;
        *q = circle;
    } else {
        *p = (t + k) % circle;
        *q = (t - k + circle) % circle;
    }
}

// the rotation (c, s, t) zeroing a_pq of the block [[app, apq], [apq, aqq]]; false (identity) when a_pq is negligible
__device__ __forceinline__ bool jacobi_rotation(double app, double aqq, double apq, double* c, double* s, double* t) {
    if (!(fabs(apq) > DBL_MIN) || fabs(apq) <= DBL_EPSILON * sqrt(fabs(app)) * sqrt(fabs(aqq)) || fabs(apq) <= 1e-150 * fabs(aqq - app)) {
        *c = 1.0;
        *s = 0.0;
        *t = 0.0;
        return false;
    }
    double theta = (aqq - app) / (2.0 * apq);
    double tt = 1.0 / (fabs(theta) + sqrt(theta * theta + 1.0));  // |θ| < 1e150: no overflow, t ≠ 0
    if (theta < 0) tt = -tt;
    *t = tt;
    *c = 1.0 / sqrt(tt * tt + 1.0);
    *s = tt * *c;
    return true;
}

// x [2][2] (rows p_a, q_a; columns p_b, q_b) -> P_aᵀ·x·P_b
__device__ __forceinline__ void jacobi_block(double x[2][2], double ca, double sa, double cb, double sb) {
    for (int r = 0; r < 2; r++) {
        double xp = x[r][0], xq = x[r][1];
        x[r][0] = cb * xp - sb * xq;
        x[r][1] = sb * xp + cb * xq;
    }
    for (int col = 0; col < 2; col++) {
        double xp = x[0][col], xq = x[1][col];
        x[0][col] = ca * xp - sa * xq;
        x[1][col] = sa * xp + ca * xq;
    }
}

// rank of values[j] in ascending order, ties by index
__device__ __forceinline__ int jacobi_rank(const double* values, int n, int j) {
    int rank = 0;
    double v = values[j];
    for (int k = 0; k < n; k++) rank += values[k] < v || (values[k] == v && k < j);
    return rank;
}

// ---------------------------------------------------------------------------------------------------------
// small matrices: one block per matrix

// a [count, n, n] -> values [count, n] ascending, vectors [count, n, n] (column k the eigenvector of
// values[k]), sweeps [count] (the sweeps run, −1 when max_sweeps did not converge); n ≤ 64
__global__ void __launch_bounds__(EIGEN_SMALL_THREADS)
eigen_jacobi_small_kernel(const double* a, int n, int max_sweeps, double* values, double* vectors, int* sweeps) {
    constexpr int PAIRS = EIGEN_SMALL_MAX / 2;
    __shared__ double c[PAIRS], s[PAIRS], t[PAIRS], diagonal[EIGEN_SMALL_MAX];
    __shared__ int rotated;
    BRM_DYNAMIC_SHARED(double, shared);  // A [np][np+1], V [np][np+1] (padded rows: fewer bank conflicts)
    int np = n + (n & 1), pairs = np / 2, stride = np + 1;
    double* A = shared;
    double* V = shared + np * stride;
#define A(i, j) A[(i) * stride + (j)]
#define V(i, j) V[(i) * stride + (j)]
    const double* in = a + (long long) blockIdx.x * n * n;
    for (int e = threadIdx.x; e < np * np; e += blockDim.x) {
        int i = e / np, j = e % np;
        A(i, j) = i < n && j < n ? in[i * n + j] : 0.0;
        V(i, j) = i == j ? 1.0 : 0.0;
    }
    __syncthreads();
    int sweep = 0;
    bool converged = n < 2;
    while (!converged && sweep < max_sweeps) {
        if (threadIdx.x == 0) rotated = 0;
        __syncthreads();
        for (int round = 0; round < np - 1; round++) {
            if ((int) threadIdx.x < pairs) {
                int k = threadIdx.x, p, q;
                jacobi_pair(k, round, np, &p, &q);
                if (jacobi_rotation(A(p, p), A(q, q), A(p, q), &c[k], &s[k], &t[k])) atomicAdd(&rotated, 1);
            }
            __syncthreads();
            for (int e = threadIdx.x; e < pairs * pairs; e += blockDim.x) {
                int ka = e / pairs, kb = e % pairs, pa, qa, pb, qb;
                if (s[ka] == 0.0 && s[kb] == 0.0) continue;
                jacobi_pair(ka, round, np, &pa, &qa);
                jacobi_pair(kb, round, np, &pb, &qb);
                if (ka == kb) {  // the plane itself: exact diagonal, zeroed a_pq
                    double apq = A(pa, qa);
                    A(pa, pa) -= t[ka] * apq;
                    A(qa, qa) += t[ka] * apq;
                    A(pa, qa) = A(qa, pa) = 0.0;
                    continue;
                }
                double x[2][2] = {{A(pa, pb), A(pa, qb)}, {A(qa, pb), A(qa, qb)}};
                jacobi_block(x, c[ka], s[ka], c[kb], s[kb]);
                A(pa, pb) = x[0][0];
                A(pa, qb) = x[0][1];
                A(qa, pb) = x[1][0];
                A(qa, qb) = x[1][1];
            }
            for (int e = threadIdx.x; e < np * pairs; e += blockDim.x) {
                int row = e / pairs, k = e % pairs, p, q;
                if (s[k] == 0.0) continue;
                jacobi_pair(k, round, np, &p, &q);
                double vp = V(row, p), vq = V(row, q);
                V(row, p) = c[k] * vp - s[k] * vq;
                V(row, q) = s[k] * vp + c[k] * vq;
            }
            __syncthreads();
        }
        sweep++;
        converged = rotated == 0;
        __syncthreads();  // everyone has read rotated before thread 0 resets it
    }
    for (int j = threadIdx.x; j < n; j += blockDim.x) diagonal[j] = A(j, j);
    __syncthreads();
    double* outValues = values + (long long) blockIdx.x * n;
    double* outVectors = vectors + (long long) blockIdx.x * n * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        int rank = jacobi_rank(diagonal, n, j);
        outValues[rank] = diagonal[j];
        for (int row = 0; row < n; row++) outVectors[row * n + rank] = V(row, j);
    }
    if (threadIdx.x == 0) sweeps[blockIdx.x] = converged ? sweep : -1;
#undef A
#undef V
}

// a [count, n, n] (n ≤ 64) -> values [count, n] ascending, vectors [count, n, n] column k for values[k],
// sweeps [count]: the sweeps each took, −1 where max_sweeps were not enough
BRM_API int brm_eigen_jacobi_batched(const double* a, int n, int count, int max_sweeps, double* values, double* vectors, int* sweeps) {
    if (n < 1 || n > EIGEN_SMALL_MAX) return (int) cudaErrorInvalidValue;
    int np = n + (n & 1);
    int bytes = (int) sizeof(double) * 2 * np * (np + 1);  // 66 KB at n = 64: above the default 48 KB
    auto kernel = eigen_jacobi_small_kernel;
    int status = (int) cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (status != 0) return status;
    if (count > 0) BRM_LAUNCH(kernel, count, EIGEN_SMALL_THREADS, bytes, a, n, max_sweeps, values, vectors, sweeps);
    return brm_launch_status();
}

// ---------------------------------------------------------------------------------------------------------
// one large matrix in global memory

constexpr int EIGEN_ROTATION_THREADS = 128, EIGEN_UPDATE_X = 32, EIGEN_UPDATE_Y = 8, EIGEN_UPDATE_COLUMNS = 4;

// a [n, n] of round t -> rotations [pairs][3] (c, s, t); rotated[t] and rotated[np] (the sweep's) += the non-identity ones
__global__ void eigen_rotations_kernel(const double* a, int n, int np, int round, double* rotations, int* rotated) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= np / 2) return;
    int p, q;
    jacobi_pair(k, round, np, &p, &q);
    double* r = rotations + 3 * k;
    bool real = p < n && q < n;  // the virtual index of an odd n: identity
    if (jacobi_rotation(real ? a[(long long) p * n + p] : 0.0, real ? a[(long long) q * n + q] : 0.0, real ? a[(long long) p * n + q] : 0.0,
                        &r[0], &r[1], &r[2])) {
        atomicAdd(&rotated[round], 1);
        atomicAdd(&rotated[np], 1);
    }
}

__device__ __forceinline__ double eigen_load(const double* m, int n, int i, int j) {
    return i < n && j < n ? m[(long long) i * n + j] : 0.0;
}

__device__ __forceinline__ void eigen_store(double* m, int n, int i, int j, double v) {
    if (i < n && j < n) m[(long long) i * n + j] = v;
}

// a [n, n], v [n, n] of round t: thread (ka, kb) rotates the block of A at pairs (ka, kb) and rows 2ka, 2ka+1 of
// V at the columns of pair kb; x spans pair kb = blockIdx.x·128 + threadIdx.x + 32u (u < 4), y the pair ka
__global__ void __launch_bounds__(EIGEN_UPDATE_X * EIGEN_UPDATE_Y)
eigen_update_kernel(double* a, double* v, int n, int np, int round, const double* rotations, const int* rotated) {
    if (rotated[round] == 0) return;
    int pairs = np / 2, ka = blockIdx.y * blockDim.y + threadIdx.y;
    if (ka >= pairs) return;
    int pa, qa;
    jacobi_pair(ka, round, np, &pa, &qa);
    double ca = rotations[3 * ka], sa = rotations[3 * ka + 1], ta = rotations[3 * ka + 2];
    for (int u = 0; u < EIGEN_UPDATE_COLUMNS; u++) {
        int kb = blockIdx.x * EIGEN_UPDATE_X * EIGEN_UPDATE_COLUMNS + threadIdx.x + EIGEN_UPDATE_X * u;
        if (kb >= pairs) break;
        double cb = rotations[3 * kb], sb = rotations[3 * kb + 1];
        if (sb != 0.0) {  // V ← V·P on rows 2ka, 2ka+1
            int pb, qb;
            jacobi_pair(kb, round, np, &pb, &qb);
            for (int row = 2 * ka; row < 2 * ka + 2 && row < n; row++) {
                double vp = v[(long long) row * n + pb], vq = v[(long long) row * n + qb];
                v[(long long) row * n + pb] = cb * vp - sb * vq;
                v[(long long) row * n + qb] = sb * vp + cb * vq;
            }
        }
        if (sa == 0.0 && sb == 0.0) continue;
        int pb, qb;
        jacobi_pair(kb, round, np, &pb, &qb);
        if (ka == kb) {
            double apq = a[(long long) pa * n + qa];
            a[(long long) pa * n + pa] -= ta * apq;
            a[(long long) qa * n + qa] += ta * apq;
            a[(long long) pa * n + qa] = a[(long long) qa * n + pa] = 0.0;
            continue;
        }
        double x[2][2] = {{eigen_load(a, n, pa, pb), eigen_load(a, n, pa, qb)}, {eigen_load(a, n, qa, pb), eigen_load(a, n, qa, qb)}};
        jacobi_block(x, ca, sa, cb, sb);
        eigen_store(a, n, pa, pb, x[0][0]);
        eigen_store(a, n, pa, qb, x[0][1]);
        eigen_store(a, n, qa, pb, x[1][0]);
        eigen_store(a, n, qa, qb, x[1][1]);
    }
}

// v [n, n] = I
__global__ void eigen_identity_kernel(double* v, int n) {
    long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e < (long long) n * n) v[e] = e / n == e % n ? 1.0 : 0.0;
}

// a [n, n] (converged: its diagonal the eigenvalues) -> values [n] ascending, ranks [n] (where column j goes)
__global__ void eigen_sort_kernel(const double* a, int n, double* values, int* ranks) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    double v = a[(long long) j * n + j];
    int rank = 0;
    for (int k = 0; k < n; k++) {
        double w = a[(long long) k * n + k];
        rank += w < v || (w == v && k < j);
    }
    values[rank] = v;
    ranks[j] = rank;
}

// v [n, n], ranks [n] -> out [n, n], out[:, ranks[j]] = v[:, j]
__global__ void eigen_gather_kernel(const double* v, const int* ranks, int n, double* out) {
    long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long long) n * n) return;
    long long row = e / n;
    int j = (int) (e % n);
    out[row * n + ranks[j]] = v[e];
}

// a [n, n] symmetric (overwritten: work) -> values [n] ascending, vectors [n, n] (column k the unit eigenvector
// of values[k]), *sweeps: the sweeps run (−1: not converged in max_sweeps; values and vectors then unset).
// rotations [3·(n+1)/2] doubles and counts [n+2] ints of device work. Synchronises once per sweep.
BRM_API int brm_eigen_jacobi(double* a, int n, int max_sweeps, double* values, double* vectors, double* rotations, int* counts, int* sweeps) {
    if (n < 1) return (int) cudaErrorInvalidValue;
    int np = n + (n & 1), pairs = np / 2;
    long long elements = (long long) n * n;
    // the rotations act on V in vectors; a finally takes the sorted columns and is copied back
    BRM_LAUNCH(eigen_identity_kernel, brm_blocks(elements, 256), 256, 0, vectors, n);
    int status = brm_launch_status();
    if (status != 0) return status;
    int done = -1;
    dim3 update(brm_blocks(pairs, EIGEN_UPDATE_X * EIGEN_UPDATE_COLUMNS), brm_blocks(pairs, EIGEN_UPDATE_Y));
    for (int sweep = 1; n > 1 && sweep <= max_sweeps && done < 0; sweep++) {
        status = (int) cudaMemset(counts, 0, sizeof(int) * (np + 1));
        if (status != 0) return status;
        for (int round = 0; round < np - 1; round++) {
            BRM_LAUNCH(eigen_rotations_kernel, brm_blocks(pairs, EIGEN_ROTATION_THREADS), EIGEN_ROTATION_THREADS, 0, a, n, np, round, rotations, counts);
            BRM_LAUNCH(eigen_update_kernel, update, dim3(EIGEN_UPDATE_X, EIGEN_UPDATE_Y), 0, a, vectors, n, np, round, rotations, counts);
        }
        int total;
        status = (int) cudaMemcpy(&total, counts + np, sizeof(int), cudaMemcpyDeviceToHost);
        if (status != 0) return status;
        if (total == 0) done = sweep;
    }
    if (n == 1) done = 0;
    *sweeps = done;
    if (done < 0) return 0;
    BRM_LAUNCH(eigen_sort_kernel, brm_blocks(n, 256), 256, 0, a, n, values, counts);
    BRM_LAUNCH(eigen_gather_kernel, brm_blocks(elements, 256), 256, 0, vectors, counts, n, a);
    status = brm_launch_status();
    if (status != 0) return status;
    return (int) cudaMemcpy(vectors, a, sizeof(double) * elements, cudaMemcpyDeviceToDevice);
}
