// Device discovery, memory and copies: the runtime calls Java makes through bindings/ (brm.bindings.cuda.CudaRuntime).
#include <cstdio>

#include "brm_cuda.cuh"

// count: the number of CUDA devices (0 when the driver finds none; the call still fails without a driver)
BRM_API int brm_device_count(int* count) { return (int) cudaGetDeviceCount(count); }

// name [capacity bytes]: the name of device 0 with its compute capability and memory, NUL-terminated
BRM_API int brm_device_name(char* name, int capacity) {
#ifdef BRM_EMULATE
    std::snprintf(name, capacity, "brm CPU emulator (no GPU: kernels run as fibers on the host)");
    return 0;
#else
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) return (int) e;
    std::snprintf(name, capacity, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor, p.totalGlobalMem / 1073741824.0);
    return 0;
#endif
}

// 1 when the library is the CPU emulator, 0 when it drives a GPU
BRM_API int brm_is_emulator() {
#ifdef BRM_EMULATE
    return 1;
#else
    return 0;
#endif
}

BRM_API const char* brm_error_string(int status) { return cudaGetErrorString((cudaError_t) status); }

// pointer: device memory [bytes], contents undefined
BRM_API int brm_malloc(void** pointer, long long bytes) { return (int) cudaMalloc(pointer, (size_t) bytes); }

BRM_API int brm_free(void* pointer) { return (int) cudaFree(pointer); }

// pointer: page-locked host memory [bytes], for fast transfers
BRM_API int brm_host_alloc(void** pointer, long long bytes) { return (int) cudaMallocHost(pointer, (size_t) bytes); }

BRM_API int brm_host_free(void* pointer) { return (int) cudaFreeHost(pointer); }

// device [bytes] = host [bytes]
BRM_API int brm_copy_to_device(void* device, const void* host, long long bytes) {
    return (int) cudaMemcpy(device, host, (size_t) bytes, cudaMemcpyHostToDevice);
}

// host [bytes] = device [bytes]; waits for the kernels before it
BRM_API int brm_copy_to_host(void* host, const void* device, long long bytes) {
    return (int) cudaMemcpy(host, device, (size_t) bytes, cudaMemcpyDeviceToHost);
}

// to [bytes] = from [bytes], both on the device
BRM_API int brm_copy_on_device(void* to, const void* from, long long bytes) {
    return (int) cudaMemcpy(to, from, (size_t) bytes, cudaMemcpyDeviceToDevice);
}

// pointer [bytes] = 0
BRM_API int brm_zero(void* pointer, long long bytes) { return (int) cudaMemset(pointer, 0, (size_t) bytes); }

// waits for every kernel launched so far; reports a fault in any of them
BRM_API int brm_synchronize() { return (int) cudaDeviceSynchronize(); }
