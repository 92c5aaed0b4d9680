// Activations of the MLP blocks, element-wise on [n] floats (any shape, contiguous), one thread per element:
//   gelu      y = x·Φ(x), Φ(x) = ½·erfc(-x/√2) (exact GELU, HF "gelu"; erfc keeps Φ's relative precision
//             in the lower tail, where ½·(1 + erf) would cancel)
//             dx = dy·(Φ(x) + x·φ(x)), φ(x) = e^(-x²/2)/√(2π)
//   siluMul   y = silu(g)·u = g·σ(g)·u, σ(g) = 1/(1 + e^-g)  (SwiGLU: g the gate, u the up projection)
//             dU = dy·g·σ(g), dG = dy·u·σ(g)·(1 + g·(1 - σ(g)))
// Each thread reads all of its element's inputs before it writes, so outputs may alias inputs where
// Backend.java allows it.
#include "brm_cuda.cuh"

static constexpr int THREADS = 256;

static __device__ __forceinline__ float normal_cdf(float x) { return 0.5f * erfcf(-0.70710678118654752f * x); }

static __device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

// x [n] -> out [n]
__global__ void gelu_kernel(const float* x, float* out, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        out[i] = v * normal_cdf(v);
    }
}

// x [n], dy [n] -> dx [n]
__global__ void gelu_backward_kernel(const float* x, const float* dy, float* dx, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i], density = 0.39894228040143268f * expf(-0.5f * v * v);
        dx[i] = dy[i] * (normal_cdf(v) + v * density);
    }
}

// gate [n], up [n] -> out [n]
__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = gate[i];
        out[i] = g * sigmoid(g) * up[i];
    }
}

// gate [n], up [n], dy [n] -> dGate [n], dUp [n]
__global__ void silu_mul_backward_kernel(const float* gate, const float* up, const float* dy, float* dGate, float* dUp, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = gate[i], u = up[i], d = dy[i], s = sigmoid(g);
        dGate[i] = d * u * s * (1.0f + g * (1.0f - s));
        dUp[i] = d * g * s;
    }
}

// x [n] -> out [n] = gelu(x); out may be x
BRM_API int brm_gelu(const float* x, float* out, long long n) {
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(gelu_kernel, brm_blocks(n, THREADS), THREADS, 0, x, out, n);
    return brm_launch_status();
}

// x [n], dy [n] -> dx [n] = dy·gelu'(x); dx may be dy
BRM_API int brm_gelu_backward(const float* x, const float* dy, float* dx, long long n) {
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(gelu_backward_kernel, brm_blocks(n, THREADS), THREADS, 0, x, dy, dx, n);
    return brm_launch_status();
}

// gate [n], up [n] -> out [n] = silu(gate)·up; out may be gate or up
BRM_API int brm_silu_mul(const float* gate, const float* up, float* out, long long n) {
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(silu_mul_kernel, brm_blocks(n, THREADS), THREADS, 0, gate, up, out, n);
    return brm_launch_status();
}

// gate [n], up [n], dy [n] -> dGate [n], dUp [n] (overwritten); either may be dy
BRM_API int brm_silu_mul_backward(const float* gate, const float* up, const float* dy, float* dGate, float* dUp, long long n) {
    if (n == 0) return cudaSuccess;
    BRM_LAUNCH(silu_mul_backward_kernel, brm_blocks(n, THREADS), THREADS, 0, gate, up, dy, dGate, dUp, n);
    return brm_launch_status();
}
