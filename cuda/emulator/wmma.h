// nvcuda::wmma for the emulator: a fragment holds its whole tile in every thread (CUDA's per-thread layout
// is opaque, so code that only uses these functions and whole-fragment loops behaves the same on both).
// Products are formed in float and summed in float, as the tensor cores do for BF16/FP16 inputs.
#pragma once

namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

inline float to_float(float v) { return v; }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float to_float(__half v) { return __half2float(v); }
template <class T> inline T from_float(float v);
template <> inline float from_float<float>(float v) { return v; }
template <> inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <> inline __half from_float<__half>(float v) { return __float2half(v); }

template <class Use, int M, int N, int K> struct tile_shape;
template <int M, int N, int K> struct tile_shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct tile_shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct tile_shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    static constexpr int rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols;
    T x[num_elements];  // row-major tile
};

template <class Use, int M, int N, int K, class T, class Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, T value) {
    for (int i = 0; i < f.num_elements; i++) f.x[i] = value;
}

template <class Use, int M, int N, int K, class T, class Layout, class U>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const U* p, unsigned ldm) {
    using F = fragment<Use, M, N, K, T, Layout>;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            f.x[r * F::cols + c] = std::is_same_v<Layout, col_major> ? p[c * ldm + r] : p[r * ldm + c];
    brm_emu::sync_warp();
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c];
    brm_emu::sync_warp();
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
    brm_emu::sync_warp();  // every lane writes the same tile: let them all read their operands first
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) (layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[r * N + c];
    brm_emu::sync_warp();
}

template <int M, int N, int K, class Tab, class LayoutA, class LayoutB, class Tc>
inline void mma_sync(fragment<accumulator, M, N, K, Tc>& d, const fragment<matrix_a, M, N, K, Tab, LayoutA>& a,
                     const fragment<matrix_b, M, N, K, Tab, LayoutB>& b, const fragment<accumulator, M, N, K, Tc>& c) {
    float fa[M * K], fb[K * N];  // each operand widened once, not once per product (FP16 widening is slow on the host)
    for (int i = 0; i < M * K; i++) fa[i] = to_float(a.x[i]);
    for (int i = 0; i < K * N; i++) fb[i] = to_float(b.x[i]);
    Tc out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float sum = to_float(c.x[i * N + j]);
            for (int k = 0; k < K; k++) sum += fa[i * K + k] * fb[k * N + j];
            out[i * N + j] = from_float<Tc>(sum);
        }
    std::memcpy(d.x, out, sizeof out);
}
}  // namespace nvcuda::wmma
