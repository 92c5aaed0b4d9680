// Matrix products, row-major throughout (element [i, j] of a matrix with leading dimension ld at i·ld + j):
//
//   C [m, n] = alpha · op(A)·op(B) + beta · C  (+ bias[j] on every row i)      op(X) = X, or Xᵀ when its flag is set
//
// A is stored [m, k] ([k, m] when trans_a), B [k, n] ([n, k] when trans_b); beta 0 never reads C, so NaN there
// stays out. Any m, n, k ≥ 0 (k = 0: C = beta·C + bias). Three kernels:
//
// 1. FP32 on the CUDA cores, the register-blocked SIMT GEMM: a block computes a BM×BN tile of C, marching over
//    k in steps of BK. Each step stages op(A) [BM, BK] and op(B) [BK, BN] in shared memory, both k-major (one
//    row of BM or BN values per k; an operand stored k-contiguous is transposed on the way in), and every
//    thread accumulates a TM×TN micro-tile in registers: TM·TN FMAs per k from (TM + TN)/4 float4 reads of
//    shared memory. Two shared buffers: the next step's global loads (float4 where the leading dimension and
//    address allow) are in flight while the current step computes, one barrier per step.
//      large products: 128×128×8 tiles, 256 threads of 8×8 (64 FMAs per 4 shared loads; ~17 KB shared,
//                      ≤ 128 registers for 2 blocks per multiprocessor);
//      small products: 64×64×16 tiles, 256 threads of 4×4, when 128×128 tiles would not give every
//                      multiprocessor a block (e.g. 1024² has 64 large tiles for 132 SMs, 256 small ones).
// 2. BF16 / FP16 on the tensor cores (nvcuda::wmma 16×16×16, FP32 accumulate), C still FP32 with alpha, beta and
//    bias: 128×128 block tiles, k steps of 32, 8 warps as 2×4, a warp owning 64×32 of C (4×2 fragments: per 16 of
//    k, 6 fragment loads for 8 MMAs). Operands are staged in shared memory in their global layout (row_major
//    or col_major fragments, so no transposes), rows padded by 8 values against bank conflicts, in a 3-stage
//    cp.async pipeline (60 KB of dynamic shared memory, 2 blocks per SM): two k steps are in flight while one
//    computes. Edges are zero-filled in shared memory. The 16-bit inputs come from narrow_kernel.
// 3. segmentOuter: per sequence s of a packed batch, out_s [m, n] = alpha · a_sᵀ·b_s, a_s and b_s the rows
//    [starts[s], starts[s+1]) of a [tokens, m] and b [tokens, n]: kernel 1 with trans_a, a grid layer
//    (blockIdx.z) per sequence that reads its k = T_s from the device starts.
#include "brm_cuda.cuh"

#include <cstdint>
#include <type_traits>

namespace {

// a product's arguments; with starts (kernel 1 only, trans_a and not trans_b), blockIdx.z is a sequence s whose
// A and B begin at row starts[s], k = starts[s+1] - starts[s], and whose C begins at row s·m
template <class T>
struct GemmArgs {
    int m, n, k;
    float alpha;
    const T* a;
    int lda;
    const T* b;
    int ldb;
    float beta;
    float* c;
    int ldc;
    const float* bias;
    const int* starts;
};

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

__device__ __forceinline__ float component(const float4& v, int j) { return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w; }

// C's new element at [., col] from the product and its old value (not read when beta is 0)
template <class T>
__device__ __forceinline__ float gemm_output(const GemmArgs<T>& p, float product, const float* old, int col) {
    return p.alpha * product + (p.beta == 0.0f ? 0.0f : p.beta * *old) + (p.bias ? p.bias[col] : 0.0f);
}

// ---------------------------------------------------------------------------------------------------------
// kernel 1: FP32 SIMT

template <int BM_, int BN_, int BK_, int TM_, int TN_, int MIN_BLOCKS_>
struct SimtTiles {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_, MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr int THREADS = (BM / TM) * (BN / TN);
};
using LargeSimt = SimtTiles<128, 128, 8, 8, 8, 2>;
using SmallSimt = SimtTiles<64, 64, 16, 4, 4, 4>;

// One operand's k step of kernel 1 on its way to shared memory, where it is k-major: s[kk·STRIDE + i] for i < SPAN
// along m (or n) and kk < BK (the +4 of STRIDE keeps the transposing stores off each other's banks).
// K_CONTIGUOUS: the operand is stored with k along its rows (A, or Bᵀ); else with m (or n) along them (Aᵀ, or B).
// fetch: this thread's float4s of the tile from global memory into registers, zeros outside the matrix;
// store: those registers into shared memory.
template <int SPAN, int BK, int THREADS, bool K_CONTIGUOUS>
struct SimtOperand {
    static constexpr int STRIDE = SPAN + 4;
    static constexpr int VECTORS = SPAN * BK / 4 / THREADS;
    static_assert(VECTORS >= 1 && SPAN * BK % (4 * THREADS) == 0, "a whole number of float4 per thread");
    float4 staged[VECTORS];

    // where this thread's v-th float4 lies in the tile: i along the span, kk along k
    __device__ __forceinline__ static void position(int v, int& i, int& kk) {
        int chunk = threadIdx.x + v * THREADS;
        if (K_CONTIGUOUS) {
            i = chunk / (BK / 4);
            kk = chunk % (BK / 4) * 4;
        } else {
            kk = chunk / (SPAN / 4);
            i = chunk % (SPAN / 4) * 4;
        }
    }

    // x [spanEnd, k] (K_CONTIGUOUS) or [k, spanEnd], leading dimension ld; the tile at span0, k0
    __device__ __forceinline__ void fetch(const float* x, int ld, int span0, int spanEnd, int k0, int k, bool vector) {
#pragma unroll
        for (int v = 0; v < VECTORS; v++) {
            int i, kk;
            position(v, i, kk);
            int row = K_CONTIGUOUS ? span0 + i : k0 + kk, col = K_CONTIGUOUS ? k0 + kk : span0 + i;
            int rows = K_CONTIGUOUS ? spanEnd : k, cols = K_CONTIGUOUS ? k : spanEnd;
            float4 value = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (row < rows) {
                const float* from = x + (long long) row * ld + col;
                if (vector && col + 3 < cols) {
                    value = *reinterpret_cast<const float4*>(from);
                } else {
                    float e[4];
#pragma unroll
                    for (int j = 0; j < 4; j++) e[j] = col + j < cols ? from[j] : 0.0f;
                    value = make_float4(e[0], e[1], e[2], e[3]);
                }
            }
            staged[v] = value;
        }
    }

    __device__ __forceinline__ void store(float* s) const {
#pragma unroll
        for (int v = 0; v < VECTORS; v++) {
            int i, kk;
            position(v, i, kk);
            if (K_CONTIGUOUS) {
#pragma unroll
                for (int j = 0; j < 4; j++) s[(kk + j) * STRIDE + i] = component(staged[v], j);
            } else {
                *reinterpret_cast<float4*>(&s[kk * STRIDE + i]) = staged[v];
            }
        }
    }
};

// C [m, n] = alpha·op(A)·op(B) + beta·C + bias, a BM×BN tile per block (grid: n tiles, m tiles, sequences)
template <class Tiles, bool TRANS_A, bool TRANS_B>
__global__ void __launch_bounds__(Tiles::THREADS, Tiles::MIN_BLOCKS) sgemm_kernel(GemmArgs<float> p) {
    constexpr int BM = Tiles::BM, BN = Tiles::BN, BK = Tiles::BK, TM = Tiles::TM, TN = Tiles::TN, THREADS = Tiles::THREADS;
    // A thread's rows are TM/4 groups of 4, group g at g·ROW_GROUPS + ty·4; its columns likewise. A warp is 4×8
    // threads, so per k it reads 4 + 8 distinct float4 of shared memory (broadcast to the others): no conflicts.
    constexpr int THREADS_N = BN / TN, ROW_GROUPS = 4 * BM / TM, COL_GROUPS = 4 * BN / TN;
    static_assert(TM % 4 == 0 && TN % 4 == 0 && THREADS_N % 8 == 0 && (BM / TM) % 4 == 0, "4×8 threads per warp");
    using OperandA = SimtOperand<BM, BK, THREADS, !TRANS_A>;
    using OperandB = SimtOperand<BN, BK, THREADS, TRANS_B>;
    __align__(16) __shared__ float sa[2][BK * OperandA::STRIDE];
    __align__(16) __shared__ float sb[2][BK * OperandB::STRIDE];

    int m = p.m, n = p.n, k = p.k;
    const float* a = p.a;
    const float* b = p.b;
    float* c = p.c;
    if (p.starts) {
        int first = p.starts[blockIdx.z];
        k = p.starts[blockIdx.z + 1] - first;
        a += (long long) first * p.lda;
        b += (long long) first * p.ldb;
        c += (long long) blockIdx.z * m * p.ldc;
    }
    int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int tx = warp % (THREADS_N / 8) * 8 + lane % 8, ty = warp / (THREADS_N / 8) * 4 + lane / 8;
    bool vectorA = p.lda % 4 == 0 && aligned16(a), vectorB = p.ldb % 4 == 0 && aligned16(b);
    bool vectorC = p.ldc % 4 == 0 && aligned16(c);

    OperandA nextA;
    OperandB nextB;
    nextA.fetch(a, p.lda, m0, m, 0, k, vectorA);
    nextB.fetch(b, p.ldb, n0, n, 0, k, vectorB);
    nextA.store(sa[0]);
    nextB.store(sb[0]);
    __syncthreads();

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;

    int steps = (k + BK - 1) / BK;
    for (int step = 0; step < steps; step++) {
        const float* ta = sa[step & 1];
        const float* tb = sb[step & 1];
        bool more = step + 1 < steps;
        if (more) {
            nextA.fetch(a, p.lda, m0, m, (step + 1) * BK, k, vectorA);
            nextB.fetch(b, p.ldb, n0, n, (step + 1) * BK, k, vectorB);
        }
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float4 ra[TM / 4], rb[TN / 4];
#pragma unroll
            for (int g = 0; g < TM / 4; g++) ra[g] = *reinterpret_cast<const float4*>(&ta[kk * OperandA::STRIDE + g * ROW_GROUPS + ty * 4]);
#pragma unroll
            for (int g = 0; g < TN / 4; g++) rb[g] = *reinterpret_cast<const float4*>(&tb[kk * OperandB::STRIDE + g * COL_GROUPS + tx * 4]);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fmaf(component(ra[i / 4], i % 4), component(rb[j / 4], j % 4), acc[i][j]);
        }
        if (more) {
            nextA.store(sa[(step + 1) & 1]);
            nextB.store(sb[(step + 1) & 1]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        int row = m0 + i / 4 * ROW_GROUPS + ty * 4 + i % 4;
        if (row >= m) continue;
        float* out = c + (long long) row * p.ldc;
#pragma unroll
        for (int g = 0; g < TN / 4; g++) {
            int col = n0 + g * COL_GROUPS + tx * 4;
            if (vectorC && col + 3 < n) {
                float4 old = p.beta == 0.0f ? make_float4(0.0f, 0.0f, 0.0f, 0.0f) : *reinterpret_cast<const float4*>(out + col);
                float v[4];
#pragma unroll
                for (int j = 0; j < 4; j++) v[j] = p.alpha * acc[i][g * 4 + j] + p.beta * component(old, j) + (p.bias ? p.bias[col + j] : 0.0f);
                *reinterpret_cast<float4*>(out + col) = make_float4(v[0], v[1], v[2], v[3]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (col + j < n) out[col + j] = gemm_output(p, acc[i][g * 4 + j], out + col + j, col + j);
            }
        }
    }
}

// the number of multiprocessors of device 0, asked once
int multiprocessors() {
    static const int count = [] {
        int value = 0;
        return cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess && value > 0 ? value : 1;
    }();
    return count;
}

template <class Tiles, bool TRANS_A, bool TRANS_B>
void launch_sgemm(const GemmArgs<float>& p, int layers) {
    auto kernel = sgemm_kernel<Tiles, TRANS_A, TRANS_B>;
    dim3 grid(brm_blocks(p.n, Tiles::BN), brm_blocks(p.m, Tiles::BM), layers);
    BRM_LAUNCH(kernel, grid, Tiles::THREADS, 0, p);
}

template <class Tiles>
void launch_sgemm(bool trans_a, bool trans_b, const GemmArgs<float>& p, int layers) {
    if (trans_a) {
        if (trans_b) launch_sgemm<Tiles, true, true>(p, layers);
        else launch_sgemm<Tiles, true, false>(p, layers);
    } else {
        if (trans_b) launch_sgemm<Tiles, false, true>(p, layers);
        else launch_sgemm<Tiles, false, false>(p, layers);
    }
}

// layers: 1, or the sequences of a segmented product
int sgemm(bool trans_a, bool trans_b, const GemmArgs<float>& p, int layers) {
    if (p.m <= 0 || p.n <= 0 || layers <= 0) return cudaSuccess;
    long long large = (long long) brm_blocks(p.m, LargeSimt::BM) * brm_blocks(p.n, LargeSimt::BN) * layers;
    if (large >= multiprocessors()) launch_sgemm<LargeSimt>(trans_a, trans_b, p, layers);
    else launch_sgemm<SmallSimt>(trans_a, trans_b, p, layers);
    return brm_launch_status();
}

// ---------------------------------------------------------------------------------------------------------
// kernel 2: BF16 / FP16 tensor cores

constexpr int WMMA_BM = 128, WMMA_BN = 128, WMMA_BK = 32, WMMA_PAD = 8, WMMA_STAGES = 3, WMMA_THREADS = 256;
// one operand's stage in shared memory, in values: [128][32 + 8] when stored k-contiguous, else [32][128 + 8]
constexpr int WMMA_OPERAND = WMMA_BM * (WMMA_BK + WMMA_PAD) > WMMA_BK * (WMMA_BM + WMMA_PAD) ? WMMA_BM * (WMMA_BK + WMMA_PAD)
                                                                                            : WMMA_BK * (WMMA_BM + WMMA_PAD);
constexpr int WMMA_SHARED_BYTES = WMMA_STAGES * 2 * WMMA_OPERAND * 2;
static_assert(WMMA_BM == WMMA_BN, "one operand stage size for A and B");
static_assert(8 * 16 * 16 * 4 <= WMMA_SHARED_BYTES, "the epilogue's 16×16 floats per warp fit in the pipeline's memory");

// One operand's [SPAN, BK] k step of kernel 2 into shared memory, in the layout it has in global memory:
// K_CONTIGUOUS (A, or Bᵀ): s[i·(BK + PAD) + kk]; else (Aᵀ, or B): s[kk·(SPAN + PAD) + i]. Chunks of 8 values
// (16 bytes) go by cp.async when the whole chunk is inside the matrix and aligned, the others element by
// element with zeros outside. x [spanEnd, k] (K_CONTIGUOUS) or [k, spanEnd], leading dimension ld.
template <class T, int SPAN, bool K_CONTIGUOUS>
__device__ __forceinline__ void load_wmma_operand(T* s, const T* x, int ld, int span0, int spanEnd, int k0, int k, bool vector) {
    constexpr int WIDTH = K_CONTIGUOUS ? WMMA_BK : SPAN, STRIDE = WIDTH + WMMA_PAD;
    static_assert(SPAN * WMMA_BK % (8 * WMMA_THREADS) == 0, "a whole number of chunks per thread");
#pragma unroll
    for (int v = 0; v < SPAN * WMMA_BK / (8 * WMMA_THREADS); v++) {
        int chunk = threadIdx.x + v * WMMA_THREADS;
        int r = chunk / (WIDTH / 8), e = chunk % (WIDTH / 8) * 8;  // the chunk's row and column in the stored tile
        int row = (K_CONTIGUOUS ? span0 : k0) + r, col = (K_CONTIGUOUS ? k0 : span0) + e;
        int rows = K_CONTIGUOUS ? spanEnd : k, cols = K_CONTIGUOUS ? k : spanEnd;
        T* to = s + r * STRIDE + e;
        if (row < rows && vector && col + 8 <= cols) {
            __pipeline_memcpy_async(to, x + (long long) row * ld + col, 16);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) to[j] = row < rows && col + j < cols ? x[(long long) row * ld + col + j] : T{};
        }
    }
}

// C [m, n] (FP32) = alpha·op(A)·op(B) + beta·C + bias with A, B in 16 bits (T), a 128×128 tile per block
template <class T, bool TRANS_A, bool TRANS_B>
__global__ void __launch_bounds__(WMMA_THREADS, 2) wmma_gemm_kernel(GemmArgs<T> p) {
    using namespace nvcuda;
    using LayoutA = std::conditional_t<TRANS_A, wmma::col_major, wmma::row_major>;
    using LayoutB = std::conditional_t<TRANS_B, wmma::col_major, wmma::row_major>;
    constexpr int LDA = TRANS_A ? WMMA_BM + WMMA_PAD : WMMA_BK + WMMA_PAD;  // the stages' leading dimensions
    constexpr int LDB = TRANS_B ? WMMA_BK + WMMA_PAD : WMMA_BN + WMMA_PAD;
    // [stage][A, B][WMMA_OPERAND]; no static shared memory in this kernel, so it starts the block's shared
    // window and every fragment address (multiples of 32 bytes from it) is as aligned as wmma needs
    BRM_DYNAMIC_SHARED(T, smem);

    int m0 = blockIdx.y * WMMA_BM, n0 = blockIdx.x * WMMA_BN;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int wm = warp / 4 * 64, wn = warp % 4 * 32;  // the warp's 64×32 of the block's tile
    bool vectorA = p.lda % 8 == 0 && aligned16(p.a), vectorB = p.ldb % 8 == 0 && aligned16(p.b);
    int steps = (p.k + WMMA_BK - 1) / WMMA_BK;
    auto load = [&](int step) {
        T* stage = smem + step % WMMA_STAGES * 2 * WMMA_OPERAND;
        load_wmma_operand<T, WMMA_BM, !TRANS_A>(stage, p.a, p.lda, m0, p.m, step * WMMA_BK, p.k, vectorA);
        load_wmma_operand<T, WMMA_BN, TRANS_B>(stage + WMMA_OPERAND, p.b, p.ldb, n0, p.n, step * WMMA_BK, p.k, vectorB);
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    // one commit group per k step (empty past the end), so that "all but the newest STAGES - 2 groups have
    // landed" means "step has landed"
#pragma unroll
    for (int s = 0; s < WMMA_STAGES - 1; s++) {
        if (s < steps) load(s);
        __pipeline_commit();
    }
    for (int step = 0; step < steps; step++) {
        __pipeline_wait_prior(WMMA_STAGES - 2);
        __syncthreads();  // step's copies seen by all; every warp is done with step - 1, whose stage is refilled next
        if (step + WMMA_STAGES - 1 < steps) load(step + WMMA_STAGES - 1);
        __pipeline_commit();
        const T* ta = smem + step % WMMA_STAGES * 2 * WMMA_OPERAND;
        const T* tb = ta + WMMA_OPERAND;
#pragma unroll
        for (int kk = 0; kk < WMMA_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LayoutA> fa[4];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> fb[2];
#pragma unroll
            for (int i = 0; i < 4; i++)
                wmma::load_matrix_sync(fa[i], ta + (TRANS_A ? kk * LDA + wm + i * 16 : (wm + i * 16) * LDA + kk), LDA);
#pragma unroll
            for (int j = 0; j < 2; j++)
                wmma::load_matrix_sync(fb[j], tb + (TRANS_B ? (wn + j * 16) * LDB + kk : kk * LDB + wn + j * 16), LDB);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
    }
    __pipeline_wait_prior(0);
    __syncthreads();  // the stages are free: each warp stages its fragments in 16×16 floats of them for the epilogue

    float* scratch = reinterpret_cast<float*>(smem) + warp * 16 * 16;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 16 * 16; e += 32) {
                int row = m0 + wm + i * 16 + e / 16, col = n0 + wn + j * 16 + e % 16;
                if (row < p.m && col < p.n) {
                    float* out = p.c + (long long) row * p.ldc + col;
                    *out = gemm_output(p, scratch[e], out, col);
                }
            }
            __syncwarp();
        }
}

template <class T, bool TRANS_A, bool TRANS_B>
int launch_wmma_gemm(const GemmArgs<T>& p) {
    auto kernel = wmma_gemm_kernel<T, TRANS_A, TRANS_B>;
    static const cudaError_t configured = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, WMMA_SHARED_BYTES);
    if (configured != cudaSuccess) return (int) configured;
    dim3 grid(brm_blocks(p.n, WMMA_BN), brm_blocks(p.m, WMMA_BM));
    BRM_LAUNCH(kernel, grid, WMMA_THREADS, WMMA_SHARED_BYTES, p);
    return brm_launch_status();
}

template <class T>
int wmma_gemm(bool trans_a, bool trans_b, const GemmArgs<T>& p) {
    if (p.m <= 0 || p.n <= 0) return cudaSuccess;
    if (trans_a) return trans_b ? launch_wmma_gemm<T, true, true>(p) : launch_wmma_gemm<T, true, false>(p);
    return trans_b ? launch_wmma_gemm<T, false, true>(p) : launch_wmma_gemm<T, false, false>(p);
}

// ---------------------------------------------------------------------------------------------------------
// FP32 -> 16 bits, rounding to nearest even

__device__ __forceinline__ void narrow(float v, __nv_bfloat16& out) { out = __float2bfloat16(v); }
__device__ __forceinline__ void narrow(float v, __half& out) { out = __float2half(v); }

// in [n] -> out [n]
template <class T>
__global__ void narrow_kernel(const float* in, T* out, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) narrow(in[i], out[i]);
}

template <class T>
int narrow_all(const float* in, T* out, long long n) {
    if (n <= 0) return cudaSuccess;
    auto kernel = narrow_kernel<T>;
    BRM_LAUNCH(kernel, brm_blocks(n, 256), 256, 0, in, out, n);
    return brm_launch_status();
}
}  // namespace

// a [m, k] (trans_a: [k, m]), b [k, n] (trans_b: [n, k]), c [m, n], bias [n] or null; leading dimensions lda, ldb, ldc
BRM_API int brm_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                      float beta, float* c, int ldc, const float* bias) {
    return sgemm(trans_a, trans_b, {m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, nullptr}, 1);
}

// as brm_sgemm with a, b in BF16 (tensor cores, FP32 accumulation); c and bias FP32
BRM_API int brm_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const __nv_bfloat16* a, int lda,
                          const __nv_bfloat16* b, int ldb, float beta, float* c, int ldc, const float* bias) {
    return wmma_gemm<__nv_bfloat16>(trans_a, trans_b, {m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, nullptr});
}

// as brm_sgemm with a, b in FP16 (tensor cores, FP32 accumulation); c and bias FP32
BRM_API int brm_gemm_fp16(int trans_a, int trans_b, int m, int n, int k, float alpha, const __half* a, int lda, const __half* b,
                          int ldb, float beta, float* c, int ldc, const float* bias) {
    return wmma_gemm<__half>(trans_a, trans_b, {m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, nullptr});
}

// starts [seqs + 1] (device), a [tokens, m], b [tokens, n] -> out [seqs·m, n], block s = alpha · a_sᵀ·b_s (seqs ≤ 65535)
BRM_API int brm_segment_outer(const int* starts, int seqs, int m, int n, float alpha, const float* a, const float* b, float* out) {
    return sgemm(true, false, {m, n, 0, alpha, a, m, b, n, 0.0f, out, n, nullptr, starts}, seqs);
}

// in [n] FP32 -> out [n] BF16
BRM_API int brm_float_to_bf16(const float* in, __nv_bfloat16* out, long long n) { return narrow_all(in, out, n); }

// in [n] FP32 -> out [n] FP16
BRM_API int brm_float_to_fp16(const float* in, __half* out, long long n) { return narrow_all(in, out, n); }
