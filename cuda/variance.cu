// The Laplace predictive variance of a batch at one layer (a LoRA matrix W [out, in] or the head), reduced on
// the device to per-sequence numbers. With the posterior precision G ⊗ A + δ·I, G = Q_G·Λ_G·Q_Gᵀ and
// A = Q_A·Λ_A·Q_Aᵀ, and sequence s's Jacobian J_s = ∂r_s/∂W:
//
//   C_s = Q_Gᵀ·J_s·Q_A
//   var_s         += Σ_ij C_s,ij² / (λG_i·λA_j + δ)       + (‖J_s‖² − ‖C_s‖²) / δ
//   cov(s, s')    += Σ_ij C_s,ij·C_s',ij / (λG_i·λA_j + δ) + (⟨J_s, J_s'⟩ − ⟨C_s, C_s'⟩) / δ
//
// the remainder terms only for a low-rank layer (a sketch leaves directions of eigenvalue 0 out of Q). The
// wide side of W is projected for the whole batch by one backend GEMM before this kernel: P_s [r, kw] is J_s·Q_A
// (lora_A, J_s [r, in]) or J_sᵀ·Q_G (lora_B, J_sᵀ [r, out]), r the LoRA rank. What is left per sequence is the
// rank-r side, Q [r, ks] the eigenbasis of that side:
//
//   C̃_s = Qᵀ·P_s [ks, kw],  C̃_s,ij = Σ_k Q_ki·P_s,kj,    C_s = C̃_s (lora_A) or C̃_sᵀ (lora_B)
//
// with the weight of C̃_ij 1/(λsmall_i·λwide_j + δ) either way. One block per pair of sequences (2g, 2g+1),
// the pairs of a preference batch: its threads take the wide columns j, keep C̃ for 8 small rows at a time in
// FP64 registers and accumulate both variances and the covariance, then a block reduction in FP64; every
// output element has one writer, so the sums are deterministic. Optionally C is written out ([seqs, kG·kA],
// row-major C_s as brm.laplace.Predictive stores it) for callers that need the coefficients themselves.
#include "brm_cuda.cuh"

constexpr int VARIANCE_THREADS = 256, VARIANCE_ROWS = 8, VARIANCE_SUMS = 9;

// sum of v over the block (blockDim.x a multiple of 32) in every thread; scratch: 32 doubles of shared memory
__device__ __forceinline__ double variance_block_sum(double v, double* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double total = 0.0;
    for (int w = 0; w < warps; w++) total += scratch[w];
    __syncthreads();
    return total;
}

// projected [seqs·r, kw], small_basis [r, ks], lambda_small [ks], lambda_wide [kw], jacobian [seqs·r, n] or null
// -> variance [seqs] += (or null: coefficients only), pair_covariance [seqs/2] += (or null), coefficients [seqs, ks·kw] = (or null);
// block g: sequences 2g, 2g+1
__global__ void __launch_bounds__(VARIANCE_THREADS)
laplace_variance_kernel(const float* projected, const double* small_basis, const double* lambda_small, const double* lambda_wide,
                        const float* jacobian, int seqs, int r, int ks, int kw, int n, double delta, int transposed,
                        double* variance, double* pair_covariance, double* coefficients) {
    __shared__ double scratch[32];
    int a = 2 * blockIdx.x, b = a + 1;
    bool two = b < seqs;
    const float* pa = projected + (long long) a * r * kw;
    const float* pb = projected + (long long) (two ? b : a) * r * kw;
    // sums: 0 Σw·Ca², 1 Σw·Cb², 2 Σw·Ca·Cb, 3 ‖Ca‖², 4 ‖Cb‖², 5 ⟨Ca,Cb⟩, 6 ‖Ja‖², 7 ‖Jb‖², 8 ⟨Ja,Jb⟩
    double sum[VARIANCE_SUMS] = {};
    long long size = (long long) ks * kw;
    for (int j = threadIdx.x; j < kw; j += blockDim.x) {
        double lw = variance ? lambda_wide[j] : 0.0;
        for (int i0 = 0; i0 < ks; i0 += VARIANCE_ROWS) {
            double ca[VARIANCE_ROWS] = {}, cb[VARIANCE_ROWS] = {};
            for (int k = 0; k < r; k++) {
                double xa = pa[(long long) k * kw + j], xb = pb[(long long) k * kw + j];
#pragma unroll
                for (int u = 0; u < VARIANCE_ROWS; u++) {  // a fixed trip count keeps ca, cb in registers
                    if (i0 + u >= ks) break;
                    double q = __ldg(&small_basis[k * ks + i0 + u]);  // the same address across the warp: a broadcast
                    ca[u] = fma(q, xa, ca[u]);
                    cb[u] = fma(q, xb, cb[u]);
                }
            }
#pragma unroll
            for (int u = 0; u < VARIANCE_ROWS; u++) {
                int i = i0 + u;
                if (i >= ks) break;
                if (variance) {
                    double weight = lambda_small[i] * lw + delta;
                    sum[0] += ca[u] * ca[u] / weight;
                    sum[1] += cb[u] * cb[u] / weight;
                    sum[2] += ca[u] * cb[u] / weight;
                    sum[3] += ca[u] * ca[u];
                    sum[4] += cb[u] * cb[u];
                    sum[5] += ca[u] * cb[u];
                }
                if (coefficients) {
                    long long at = transposed ? (long long) j * ks + i : (long long) i * kw + j;
                    coefficients[a * size + at] = ca[u];
                    if (two) coefficients[b * size + at] = cb[u];
                }
            }
        }
    }
    if (!variance) return;  // coefficients only: the whole block leaves before the reductions' barriers
    if (jacobian) {
        const float* ja = jacobian + (long long) a * r * n;
        const float* jb = jacobian + (long long) (two ? b : a) * r * n;
        for (long long e = threadIdx.x; e < (long long) r * n; e += blockDim.x) {
            double x = ja[e], y = jb[e];
            sum[6] += x * x;
            sum[7] += y * y;
            sum[8] += x * y;
        }
    }
    for (int t = 0; t < VARIANCE_SUMS; t++) sum[t] = variance_block_sum(sum[t], scratch);
    if (threadIdx.x != 0) return;
    bool remainder = jacobian != nullptr;
    variance[a] += sum[0] + (remainder ? (sum[6] - sum[3]) / delta : 0.0);
    if (two) variance[b] += sum[1] + (remainder ? (sum[7] - sum[4]) / delta : 0.0);
    if (two && pair_covariance) pair_covariance[blockIdx.x] += sum[2] + (remainder ? (sum[8] - sum[5]) / delta : 0.0);
}

// projected [seqs·r, kw] (FP32), small_basis [r, ks], lambda_small [ks], lambda_wide [kw] (FP64), jacobian [seqs·r, n]
// (FP32; null for a layer whose factors are both full) -> variance [seqs] += (null: only the coefficients, and the lambdas
// and jacobian unused), pair_covariance [seqs/2] += (null: none), coefficients [seqs, ks·kw] = C_s (null: none; transposed:
// C_s = C̃_sᵀ [kw, ks], the lora_B layout)
BRM_API int brm_laplace_variance(const float* projected, const double* small_basis, const double* lambda_small, const double* lambda_wide,
                                 const float* jacobian, int seqs, int r, int ks, int kw, int n, double delta, int transposed,
                                 double* variance, double* pair_covariance, double* coefficients) {
    if (seqs > 0)
        BRM_LAUNCH(laplace_variance_kernel, brm_blocks(seqs, 2), VARIANCE_THREADS, 0, projected, small_basis, lambda_small, lambda_wide, jacobian,
                   seqs, r, ks, kw, n, delta, transposed, variance, pair_covariance, coefficients);
    return brm_launch_status();
}
