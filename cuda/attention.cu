// Attention over a packed batch (Backend.attention, attentionBackward, cacheAppend, cachedAttention).
// Sequence s is rows [starts[s], starts[s+1]) (the packing is the mask: no padding rows); per sequence and
// query head h, with key/value head g = h / (Hq/Hkv) (GQA) and heads of dimension D:
//   S = scale · Q·Kᵀ   [T, T]       causal: S_tj = -inf for j > t
//   P = softmax_rows(S)
//   O = P·V            [T, D]
// Backward for dO, with Δ_t = rowsum(P⊙dP)_t = dO_t·O_t:
//   dP = dO·Vᵀ, dS = P ⊙ (dP − Δ), dQ = scale · dS·K, dK = scale · dSᵀ·Q, dV = Pᵀ·dO
//   dK and dV of a key/value head summed over the query heads of its group
// Decoding with a KV cache of C positions per slot: row r of sequence s (position pos_r, slot slots[s]) is
// stored at keys [(slot·Hkv + g)·D + e, pos_r] (transposed) and values [slot·C + pos_r, g·D + e], and attends
// the cached positions j ≤ pos_r of its slot.
//
// Flash attention in FP32: S never reaches global memory. A block of 128 threads owns a tile of 64 queries
// (the dK/dV kernel: 64 keys) and streams the other side through shared memory 64 rows at a time. Tiles are
// stored transposed, [D, 64] with rows padded to 68 floats, so both products of a step read float4s without
// bank conflicts; thread (ty, tx) = (threadIdx / 8, threadIdx % 8) owns rows 4·ty .. 4·ty+3 of the tile, the
// score columns 4·tx .. 4·tx+3 and 32+4·tx .. 32+4·tx+3, and the output dims tx + 8·i. Softmax is online and
// in base 2: scores s' = s·log2(e), and a new running max m rescales the running sum l and O by 2^(m_old − m).
// The backward has no atomics, so it is deterministic (same inputs, same bits):
//   1. the forward again, writing per (row, head) L = m + log2(l) (log-sum-exp in base 2) and Δ = dO·O
//   2. per key tile: P = 2^(s' − L), dV = Σ Pᵀ·dO, dK = scale · Σ dSᵀ·Q over the query tiles and the group
//   3. per query tile: dQ = scale · Σ dS·K over the key tiles
#include "brm_cuda.cuh"

namespace {
constexpr int TILE = 64;      // queries or keys per tile
constexpr int LD = TILE + 4;  // row stride of a transposed tile in shared memory (float4-aligned, spreads banks)
constexpr int THREADS = 128;  // 16 × 8 threads cover a 64 × 64 tile of scores, 4 × 8 each
constexpr int CHUNK = 256;    // cached positions scored at a time by cachedAttention
constexpr float LOG2E = 1.4426950408889634f;

// heads in a row-major tensor: head h of row r at base[r·row + h·head .. + dim)
struct HeadView {
    float* base;
    int row, head;
    __device__ __forceinline__ float* at(int r, int h) const { return base + (long long) r * row + (long long) h * head; }
};

__device__ __forceinline__ int min_int(int a, int b) { return a < b ? a : b; }

// the sequence holding row: the largest s with starts[s] ≤ row
__device__ __forceinline__ int sequence_of(const int* starts, int seqs, int row) {
    int lo = 0, hi = seqs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (starts[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// column of score j (0..7) of thread tx: two float4 runs, 4·tx and 32 + 4·tx
__device__ __forceinline__ int score_column(int j, int tx) { return (j / 4) * 32 + tx * 4 + j % 4; }

// tile [DP, LD] = rows [0, rows) of a head transposed (src: the head in the first row, rows `stride` floats
// apart), 0 past `rows` and past `dim`. A warp takes 8 dims × 4 rows: 32-byte global runs, 32 distinct banks.
template <int DP>
__device__ __forceinline__ void load_transposed(float* tile, const float* src, int stride, int rows, int dim) {
    for (int e = threadIdx.x; e < DP * TILE; e += THREADS) {
        int d = (e / 32 % (DP / 8)) * 8 + e % 8, r = (e / 32 / (DP / 8)) * 4 + e / 8 % 4;
        tile[d * LD + r] = r < rows && d < dim ? src[(long long) r * stride + d] : 0.0f;
    }
}

// a, b [dim, LD] transposed tiles -> acc[i][j] = Σ_d a[d, 4·ty+i] · b[d, score_column(j)]
__device__ __forceinline__ void tile_products(const float* a, const float* b, int dim, float (&acc)[4][8]) {
    int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
#pragma unroll 4
    for (int d = 0; d < dim; d++) {
        float4 x = *reinterpret_cast<const float4*>(a + d * LD + ty * 4);
        float4 y0 = *reinterpret_cast<const float4*>(b + d * LD + tx * 4);
        float4 y1 = *reinterpret_cast<const float4*>(b + d * LD + 32 + tx * 4);
        float xs[4] = {x.x, x.y, x.z, x.w}, ys[8] = {y0.x, y0.y, y0.z, y0.w, y1.x, y1.y, y1.z, y1.w};
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) acc[i][j] += xs[i] * ys[j];
    }
}

// p [TILE, LD] rows 4·ty+i, columns score_column(j) = v[i][j]
__device__ __forceinline__ void store_scores(float* p, const float (&v)[4][8]) {
    int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float* row = p + (ty * 4 + i) * LD;
        *reinterpret_cast<float4*>(row + tx * 4) = make_float4(v[i][0], v[i][1], v[i][2], v[i][3]);
        *reinterpret_cast<float4*>(row + 32 + tx * 4) = make_float4(v[i][4], v[i][5], v[i][6], v[i][7]);
    }
}

// p [TILE, LD], b [DP, LD] transposed -> acc[i][k] += Σ_{j<n} p[4·ty+i, j] · b[tx + 8·k, j]; n a multiple of 4,
// p's columns past the valid ones 0
template <int DP>
__device__ __forceinline__ void tile_accumulate(const float* p, const float* b, int n, float (&acc)[4][DP / 8]) {
    int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
    for (int j = 0; j < n; j += 4) {
        float4 pr[4];
#pragma unroll
        for (int i = 0; i < 4; i++) pr[i] = *reinterpret_cast<const float4*>(p + (ty * 4 + i) * LD + j);
#pragma unroll
        for (int k = 0; k < DP / 8; k++) {
            float4 y = *reinterpret_cast<const float4*>(b + (tx + 8 * k) * LD + j);
#pragma unroll
            for (int i = 0; i < 4; i++) acc[i][k] += pr[i].x * y.x + pr[i].y * y.y + pr[i].z * y.z + pr[i].w * y.w;
        }
    }
}

// the 8 threads of a row group (lanes differing in their low 3 bits) combined
__device__ __forceinline__ float row_max(float v) {
    for (int offset = 1; offset < 8; offset <<= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

__device__ __forceinline__ float row_sum(float v) {
    for (int offset = 1; offset < 8; offset <<= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// q, k, v heads; out [tokens, heads·dim], or with lse non-null the statistics of the backward instead:
// dOut [tokens, heads·dim] -> lse, delta [tokens, heads] (L = m + log2(l), Δ = dO·O).
// Grid (seqs · tiles, heads): block (s·tiles + i, h) takes queries [64·i, 64·i + 64) of sequence s, head h.
template <int DP>
__global__ void __launch_bounds__(THREADS) attention_forward_kernel(HeadView q, HeadView k, HeadView v, float* out,
                                                                    const float* dOut, float* lse, float* delta,
                                                                    const int* starts, int tiles, int heads, int group,
                                                                    int dim, int causal, float scale) {
    int seq = blockIdx.x / tiles, q0 = blockIdx.x % tiles * TILE, h = blockIdx.y, g = h / group;
    int start = starts[seq], len = starts[seq + 1] - start;
    if (q0 >= len) return;
    BRM_DYNAMIC_SHARED(float, smem);
    float *qt = smem, *kt = qt + DP * LD, *vt = kt + DP * LD, *pt = vt + DP * LD;
    int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
    load_transposed<DP>(qt, q.at(start + q0, h), q.row, min_int(TILE, len - q0), dim);

    float m[4], l[4], o[4][DP / 8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int c = 0; c < DP / 8; c++) o[i][c] = 0.0f;
    }
    float s2 = scale * LOG2E;
    int keys = causal ? min_int(len, q0 + TILE) : len;
    for (int k0 = 0; k0 < keys; k0 += TILE) {
        int n = min_int(TILE, keys - k0);
        __syncthreads();  // the previous step is done with kt, vt, pt
        load_transposed<DP>(kt, k.at(start + k0, g), k.row, n, dim);
        load_transposed<DP>(vt, v.at(start + k0, g), v.row, n, dim);
        __syncthreads();
        float s[4][8];
        tile_products(qt, kt, dim, s);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int t = q0 + ty * 4 + i;
            float mx = m[i];
#pragma unroll
            for (int j = 0; j < 8; j++) {
                int key = k0 + score_column(j, tx);
                s[i][j] = key < k0 + n && (!causal || key <= t) ? s[i][j] * s2 : -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
            mx = row_max(mx);
            float base = mx == -INFINITY ? 0.0f : mx;  // no key yet in this row: p and the rescale are 0
            float alpha = exp2f(m[i] - base);
            l[i] *= alpha;  // this thread's share of the row sum, combined at the end
#pragma unroll
            for (int c = 0; c < DP / 8; c++) o[i][c] *= alpha;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                s[i][j] = exp2f(s[i][j] - base);
                l[i] += s[i][j];
            }
            m[i] = mx;
        }
        store_scores(pt, s);
        __syncthreads();
        tile_accumulate<DP>(pt, vt, (n + 3) & ~3, o);
    }

#pragma unroll
    for (int i = 0; i < 4; i++) {
        int t = q0 + ty * 4 + i, row = start + t;
        float sum = row_sum(l[i]);
        if (lse == nullptr) {
            if (t < len)
#pragma unroll
                for (int c = 0; c < DP / 8; c++)
                    if (tx + 8 * c < dim) out[(long long) row * heads * dim + h * dim + tx + 8 * c] = o[i][c] / sum;
        } else {
            float dot = 0.0f;
            if (t < len)
#pragma unroll
                for (int c = 0; c < DP / 8; c++)
                    if (tx + 8 * c < dim) dot += dOut[(long long) row * heads * dim + h * dim + tx + 8 * c] * o[i][c];
            dot = row_sum(dot);
            if (t < len && tx == 0) {
                lse[(long long) row * heads + h] = m[i] + log2f(sum);
                delta[(long long) row * heads + h] = dot / sum;
            }
        }
    }
}

// q, k, v heads, dOut [tokens, heads·dim], lse, delta [tokens, heads] -> dk, dv heads (overwritten).
// Grid (seqs · tiles, kvHeads): block (s·tiles + i, g) takes keys [64·i, 64·i + 64) of sequence s, head g, and
// sums over the query tiles that see them and the query heads of the group.
template <int DP>
__global__ void __launch_bounds__(THREADS) attention_backward_kv_kernel(HeadView q, HeadView k, HeadView v, const float* dOut,
                                                                        HeadView dk, HeadView dv, const float* lse,
                                                                        const float* delta, const int* starts, int tiles,
                                                                        int heads, int group, int dim, int causal, float scale) {
    int seq = blockIdx.x / tiles, k0 = blockIdx.x % tiles * TILE, g = blockIdx.y;
    int start = starts[seq], len = starts[seq + 1] - start;
    if (k0 >= len) return;
    BRM_DYNAMIC_SHARED(float, smem);
    float *kt = smem, *vt = kt + DP * LD, *qt = vt + DP * LD, *dot = qt + DP * LD, *pt = dot + DP * LD;
    float *rowLse = pt + TILE * LD, *rowDelta = rowLse + TILE;
    int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
    load_transposed<DP>(kt, k.at(start + k0, g), k.row, min_int(TILE, len - k0), dim);
    load_transposed<DP>(vt, v.at(start + k0, g), v.row, min_int(TILE, len - k0), dim);

    float dK[4][DP / 8], dV[4][DP / 8];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int c = 0; c < DP / 8; c++) dK[i][c] = dV[i][c] = 0.0f;
    float s2 = scale * LOG2E;
    HeadView dO{const_cast<float*>(dOut), heads * dim, dim};
    for (int h = g * group; h < (g + 1) * group; h++)
        for (int q0 = causal ? k0 : 0; q0 < len; q0 += TILE) {
            int n = min_int(TILE, len - q0);
            __syncthreads();  // the previous step is done with qt, dot, pt and the row statistics
            load_transposed<DP>(qt, q.at(start + q0, h), q.row, n, dim);
            load_transposed<DP>(dot, dO.at(start + q0, h), dO.row, n, dim);
            for (int i = threadIdx.x; i < TILE; i += THREADS) {
                long long at = (long long) (start + q0 + i) * heads + h;
                rowLse[i] = i < n ? lse[at] : INFINITY;  // a query past the sequence gets p = 0
                rowDelta[i] = i < n ? delta[at] : 0.0f;
            }
            __syncthreads();
            float p[4][8], ds[4][8];  // transposed: rows are keys, columns queries
            tile_products(kt, qt, dim, p);
            tile_products(vt, dot, dim, ds);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    int c = score_column(j, tx), key = k0 + ty * 4 + i, query = q0 + c;
                    p[i][j] = causal && query < key ? 0.0f : exp2f(p[i][j] * s2 - rowLse[c]);
                    ds[i][j] = p[i][j] * (ds[i][j] - rowDelta[c]);
                }
            store_scores(pt, p);
            __syncthreads();
            tile_accumulate<DP>(pt, dot, (n + 3) & ~3, dV);
            __syncthreads();
            store_scores(pt, ds);
            __syncthreads();
            tile_accumulate<DP>(pt, qt, (n + 3) & ~3, dK);
        }

#pragma unroll
    for (int i = 0; i < 4; i++) {
        int key = k0 + ty * 4 + i;
        if (key < len)
#pragma unroll
            for (int c = 0; c < DP / 8; c++)
                if (tx + 8 * c < dim) {
                    dk.at(start + key, g)[tx + 8 * c] = scale * dK[i][c];
                    dv.at(start + key, g)[tx + 8 * c] = dV[i][c];
                }
    }
}

// q, k, v heads, dOut [tokens, heads·dim], lse, delta [tokens, heads] -> dq heads (overwritten).
// Grid (seqs · tiles, heads) as the forward's.
template <int DP>
__global__ void __launch_bounds__(THREADS) attention_backward_q_kernel(HeadView q, HeadView k, HeadView v, const float* dOut,
                                                                       HeadView dq, const float* lse, const float* delta,
                                                                       const int* starts, int tiles, int heads, int group,
                                                                       int dim, int causal, float scale) {
    int seq = blockIdx.x / tiles, q0 = blockIdx.x % tiles * TILE, h = blockIdx.y, g = h / group;
    int start = starts[seq], len = starts[seq + 1] - start;
    if (q0 >= len) return;
    BRM_DYNAMIC_SHARED(float, smem);
    float *qt = smem, *dot = qt + DP * LD, *kt = dot + DP * LD, *vt = kt + DP * LD, *pt = vt + DP * LD;
    int ty = threadIdx.x / 8, tx = threadIdx.x % 8;
    HeadView dO{const_cast<float*>(dOut), heads * dim, dim};
    load_transposed<DP>(qt, q.at(start + q0, h), q.row, min_int(TILE, len - q0), dim);
    load_transposed<DP>(dot, dO.at(start + q0, h), dO.row, min_int(TILE, len - q0), dim);

    float rowLse[4], rowDelta[4], dQ[4][DP / 8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int t = q0 + ty * 4 + i;
        rowLse[i] = t < len ? lse[(long long) (start + t) * heads + h] : 0.0f;
        rowDelta[i] = t < len ? delta[(long long) (start + t) * heads + h] : 0.0f;
#pragma unroll
        for (int c = 0; c < DP / 8; c++) dQ[i][c] = 0.0f;
    }
    float s2 = scale * LOG2E;
    int keys = causal ? min_int(len, q0 + TILE) : len;
    for (int k0 = 0; k0 < keys; k0 += TILE) {
        int n = min_int(TILE, keys - k0);
        __syncthreads();  // the previous step is done with kt, vt, pt
        load_transposed<DP>(kt, k.at(start + k0, g), k.row, n, dim);
        load_transposed<DP>(vt, v.at(start + k0, g), v.row, n, dim);
        __syncthreads();
        float ds[4][8], dp[4][8];
        tile_products(qt, kt, dim, ds);
        tile_products(dot, vt, dim, dp);
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) {
                int key = k0 + score_column(j, tx), t = q0 + ty * 4 + i;
                float p = key < k0 + n && (!causal || key <= t) ? exp2f(ds[i][j] * s2 - rowLse[i]) : 0.0f;
                ds[i][j] = p * (dp[i][j] - rowDelta[i]);
            }
        store_scores(pt, ds);
        __syncthreads();
        tile_accumulate<DP>(pt, kt, (n + 3) & ~3, dQ);
    }

#pragma unroll
    for (int i = 0; i < 4; i++) {
        int t = q0 + ty * 4 + i;
        if (t < len)
#pragma unroll
            for (int c = 0; c < DP / 8; c++)
                if (tx + 8 * c < dim) dq.at(start + t, h)[tx + 8 * c] = scale * dQ[i][c];
    }
}

// k, v heads [tokens, ·] -> keys [slots·kvHeads·dim, capacity], values [slots·capacity, kvHeads·dim] at each
// row's slot and position. One thread per (row, head, dim).
__global__ void cache_append_kernel(HeadView k, HeadView v, float* keys, float* values, const int* starts,
                                    const int* positions, const int* slots, int seqs, int tokens, int kvHeads, int dim,
                                    int capacity) {
    int width = kvHeads * dim;
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) tokens * width) return;
    int r = (int) (i / width), c = (int) (i % width), g = c / dim, e = c % dim;
    long long slot = slots[sequence_of(starts, seqs, r)], pos = positions[r];
    keys[((slot * kvHeads + g) * dim + e) * capacity + pos] = k.at(r, g)[e];
    values[(slot * capacity + pos) * width + c] = v.at(r, g)[e];
}

// q heads [tokens, ·], keys [slots·kvHeads·dim, capacity], values [slots·capacity, kvHeads·dim] -> out [tokens,
// heads·dim]. Grid (tokens, heads): per row and query head, the cached positions in chunks of 256: each thread
// scores positions (a contiguous run of Kᵀ across the threads), online softmax over the block, and each warp
// adds a quarter of the chunk's values (lane: dims lane + 32·i); the warps' sums are combined at the end.
template <int DP>
__global__ void __launch_bounds__(THREADS) cached_attention_kernel(HeadView q, const float* keys, const float* values,
                                                                   float* out, const int* starts, const int* positions,
                                                                   const int* slots, int seqs, int heads, int group,
                                                                   int kvHeads, int dim, int capacity, float scale) {
    __shared__ float qs[DP], scores[CHUNK], partial[THREADS / 32][DP], scratch[32];
    int r = blockIdx.x, h = blockIdx.y, g = h / group, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    long long slot = slots[sequence_of(starts, seqs, r)];
    int n = positions[r] + 1, width = kvHeads * dim;
    const float* kt = keys + (slot * kvHeads + g) * dim * capacity;  // row e of this head's Kᵀ at kt + e·capacity
    const float* vs = values + slot * capacity * width + g * dim;     // position j at vs + j·width
    for (int e = threadIdx.x; e < dim; e += THREADS) qs[e] = q.at(r, h)[e] * scale * LOG2E;

    float m = -INFINITY, l = 0.0f, acc[DP / 32];
#pragma unroll
    for (int c = 0; c < DP / 32; c++) acc[c] = 0.0f;
    for (int c0 = 0; c0 < n; c0 += CHUNK) {
        int count = min_int(CHUNK, n - c0);
        __syncthreads();  // qs written; the previous chunk is done with scores
        float mx = -INFINITY;
        for (int j = threadIdx.x; j < count; j += THREADS) {
            float s = 0.0f;
            for (int e = 0; e < dim; e++) s += qs[e] * kt[(long long) e * capacity + c0 + j];
            scores[j] = s;
            mx = fmaxf(mx, s);
        }
        float mNew = fmaxf(m, brm_block_max(mx, scratch)), alpha = exp2f(m - mNew), sum = 0.0f;
        for (int j = threadIdx.x; j < count; j += THREADS) {
            float p = exp2f(scores[j] - mNew);
            scores[j] = p;
            sum += p;
        }
        l = l * alpha + brm_block_sum(sum, scratch);  // its barrier also publishes scores
        m = mNew;
#pragma unroll
        for (int c = 0; c < DP / 32; c++) acc[c] *= alpha;
        for (int j = warp; j < count; j += THREADS / 32) {
            const float* row = vs + (long long) (c0 + j) * width;
#pragma unroll
            for (int c = 0; c < DP / 32; c++)
                if (lane + 32 * c < dim) acc[c] += scores[j] * row[lane + 32 * c];
        }
    }
#pragma unroll
    for (int c = 0; c < DP / 32; c++) partial[warp][lane + 32 * c] = acc[c];
    __syncthreads();
    for (int e = threadIdx.x; e < dim; e += THREADS) {
        float sum = 0.0f;
        for (int w = 0; w < THREADS / 32; w++) sum += partial[w][e];
        out[(long long) r * heads * dim + h * dim + e] = sum / l;
    }
}

// dynamic shared memory of the tile kernels: `tiles` transposed [DP, LD] tiles, one [TILE, LD] score tile and
// `extra` floats
template <int DP>
constexpr int tile_bytes(int tiles, int extra) { return (int) sizeof(float) * (tiles * DP * LD + TILE * LD + extra); }

// sets a kernel's dynamic shared memory limit (past the default 48 KiB), then launches it
#define BRM_LAUNCH_LARGE(kernel, grid, block, shared, ...)                                                \
    do {                                                                                                  \
        cudaError_t limit = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared); \
        if (limit != cudaSuccess) return (int) limit;                                                     \
        BRM_LAUNCH(kernel, grid, block, shared, __VA_ARGS__);                                             \
    } while (0)

template <int DP>
int forward(HeadView q, HeadView k, HeadView v, float* out, const float* dOut, float* lse, float* delta,
            const int* starts, int seqs, int maxLength, int heads, int kvHeads, int dim, int causal, float scale) {
    int tiles = (maxLength + TILE - 1) / TILE;
    auto kernel = attention_forward_kernel<DP>;
    BRM_LAUNCH_LARGE(kernel, dim3(seqs * tiles, heads), THREADS, tile_bytes<DP>(3, 0), q, k, v, out, dOut, lse, delta,
                     starts, tiles, heads, heads / kvHeads, dim, causal, scale);
    return brm_launch_status();
}

template <int DP>
int backward(HeadView q, HeadView k, HeadView v, const float* dOut, HeadView dq, HeadView dk, HeadView dv, float* stats,
             const int* starts, int seqs, int tokens, int maxLength, int heads, int kvHeads, int dim, int causal, float scale) {
    float *lse = stats, *delta = stats + (long long) tokens * heads;
    int status = forward<DP>(q, k, v, nullptr, dOut, lse, delta, starts, seqs, maxLength, heads, kvHeads, dim, causal, scale);
    if (status != 0) return status;
    int tiles = (maxLength + TILE - 1) / TILE, group = heads / kvHeads;
    auto kv = attention_backward_kv_kernel<DP>;
    BRM_LAUNCH_LARGE(kv, dim3(seqs * tiles, kvHeads), THREADS, tile_bytes<DP>(4, 2 * TILE), q, k, v, dOut, dk, dv, lse,
                     delta, starts, tiles, heads, group, dim, causal, scale);
    if ((status = brm_launch_status()) != 0) return status;
    auto qk = attention_backward_q_kernel<DP>;
    BRM_LAUNCH_LARGE(qk, dim3(seqs * tiles, heads), THREADS, tile_bytes<DP>(4, 0), q, k, v, dOut, dq, lse, delta, starts,
                     tiles, heads, group, dim, causal, scale);
    return brm_launch_status();
}

HeadView view(const float* base, int row, int head) { return HeadView{const_cast<float*>(base), row, head}; }
}  // namespace

// Heads are passed as (pointer to head 0 of row 0, floats between rows, floats between heads); dim ≤ 128,
// heads a multiple of kvHeads, starts [seqs+1] on the device, maxLength the longest sequence.

// q [tokens, ·] heads heads, k, v [tokens, ·] kvHeads heads -> out [tokens, heads·dim]
BRM_API int brm_attention(const float* q, int qRow, int qHead, const float* k, int kRow, int kHead, const float* v,
                          int vRow, int vHead, float* out, const int* starts, int seqs, int maxLength, int heads,
                          int kvHeads, int dim, int causal, float scale) {
    if (seqs == 0) return 0;
    HeadView qv = view(q, qRow, qHead), kv = view(k, kRow, kHead), vv = view(v, vRow, vHead);
    if (dim <= 32) return forward<32>(qv, kv, vv, out, nullptr, nullptr, nullptr, starts, seqs, maxLength, heads, kvHeads, dim, causal, scale);
    if (dim <= 64) return forward<64>(qv, kv, vv, out, nullptr, nullptr, nullptr, starts, seqs, maxLength, heads, kvHeads, dim, causal, scale);
    if (dim <= 128) return forward<128>(qv, kv, vv, out, nullptr, nullptr, nullptr, starts, seqs, maxLength, heads, kvHeads, dim, causal, scale);
    return (int) cudaErrorInvalidValue;
}

// q, k, v as brm_attention, dOut [tokens, heads·dim] -> dq, dk, dv heads (overwritten; may be views of one
// tensor); stats: scratch [2·tokens·heads]
BRM_API int brm_attention_backward(const float* q, int qRow, int qHead, const float* k, int kRow, int kHead,
                                   const float* v, int vRow, int vHead, const float* dOut, float* dq, int dqRow,
                                   int dqHead, float* dk, int dkRow, int dkHead, float* dv, int dvRow, int dvHead,
                                   float* stats, const int* starts, int seqs, int tokens, int maxLength, int heads,
                                   int kvHeads, int dim, int causal, float scale) {
    if (seqs == 0) return 0;
    HeadView qv = view(q, qRow, qHead), kv = view(k, kRow, kHead), vv = view(v, vRow, vHead);
    HeadView dqv = view(dq, dqRow, dqHead), dkv = view(dk, dkRow, dkHead), dvv = view(dv, dvRow, dvHead);
    if (dim <= 32) return backward<32>(qv, kv, vv, dOut, dqv, dkv, dvv, stats, starts, seqs, tokens, maxLength, heads, kvHeads, dim, causal, scale);
    if (dim <= 64) return backward<64>(qv, kv, vv, dOut, dqv, dkv, dvv, stats, starts, seqs, tokens, maxLength, heads, kvHeads, dim, causal, scale);
    if (dim <= 128) return backward<128>(qv, kv, vv, dOut, dqv, dkv, dvv, stats, starts, seqs, tokens, maxLength, heads, kvHeads, dim, causal, scale);
    return (int) cudaErrorInvalidValue;
}

// k, v [tokens, ·] kvHeads heads -> keys [slots·kvHeads·dim, capacity], values [slots·capacity, kvHeads·dim];
// starts [seqs+1], positions [tokens], slots [seqs] on the device
BRM_API int brm_cache_append(const float* k, int kRow, int kHead, const float* v, int vRow, int vHead, float* keys,
                             float* values, const int* starts, const int* positions, const int* slots, int seqs,
                             int tokens, int kvHeads, int dim, int capacity) {
    long long n = (long long) tokens * kvHeads * dim;
    if (n == 0) return 0;
    BRM_LAUNCH(cache_append_kernel, brm_blocks(n, 256), 256, 0, view(k, kRow, kHead), view(v, vRow, vHead), keys, values,
               starts, positions, slots, seqs, tokens, kvHeads, dim, capacity);
    return brm_launch_status();
}

// q [tokens, ·] heads heads, keys and values as brm_cache_append writes them -> out [tokens, heads·dim]
BRM_API int brm_cached_attention(const float* q, int qRow, int qHead, const float* keys, const float* values, float* out,
                                 const int* starts, const int* positions, const int* slots, int seqs, int tokens,
                                 int heads, int kvHeads, int dim, int capacity, float scale) {
    if (tokens == 0) return 0;
    HeadView qv = view(q, qRow, qHead);
    dim3 grid(tokens, heads);
    int group = heads / kvHeads;
    if (dim <= 32) {
        auto kernel = cached_attention_kernel<32>;
        BRM_LAUNCH(kernel, grid, THREADS, 0, qv, keys, values, out, starts, positions, slots, seqs, heads, group, kvHeads, dim, capacity, scale);
    } else if (dim <= 64) {
        auto kernel = cached_attention_kernel<64>;
        BRM_LAUNCH(kernel, grid, THREADS, 0, qv, keys, values, out, starts, positions, slots, seqs, heads, group, kvHeads, dim, capacity, scale);
    } else if (dim <= 128) {
        auto kernel = cached_attention_kernel<128>;
        BRM_LAUNCH(kernel, grid, THREADS, 0, qv, keys, values, out, starts, positions, slots, seqs, heads, group, kvHeads, dim, capacity, scale);
    } else {
        return (int) cudaErrorInvalidValue;
    }
    return brm_launch_status();
}
