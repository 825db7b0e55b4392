#pragma once
// Error checks of the CUDA backend: every CUDA runtime and cuBLAS call goes through
// SSL_CUDA_CHECK / SSL_CUBLAS_CHECK, which throw ssl::backend_error naming the call,
// the error and where it happened. Kernel launches are checked with SSL_CUDA_CHECK_LAUNCH.
#if !defined(__CUDACC__)
#error "ssl/backend/cuda is compiled by nvcc only (include <ssl/cuda.hpp> from a .cu file)"
#endif
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../../core/error.hpp"

namespace ssl::gpu {

inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  throw backend_error(detail::concat("CUDA call ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
                                     ") at ", file, ":", line));
}

inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_(unknown)";
  }
}

inline void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  throw backend_error(detail::concat("cuBLAS call ", call, " failed: ", cublas_status_name(s), " at ", file, ":", line));
}

}  // namespace ssl::gpu

#define SSL_CUDA_CHECK(call)                                                             \
  do {                                                                                   \
    const cudaError_t ssl_cuda_err_ = (call);                                            \
    if (ssl_cuda_err_ != cudaSuccess) [[unlikely]]                                       \
      ::ssl::gpu::throw_cuda_error(ssl_cuda_err_, #call, __FILE__, __LINE__);            \
  } while (0)

#define SSL_CUBLAS_CHECK(call)                                                           \
  do {                                                                                   \
    const cublasStatus_t ssl_cublas_st_ = (call);                                        \
    if (ssl_cublas_st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                            \
      ::ssl::gpu::throw_cublas_error(ssl_cublas_st_, #call, __FILE__, __LINE__);         \
  } while (0)

// After a <<<...>>> launch: reports a bad configuration (not asynchronous faults).
#define SSL_CUDA_CHECK_LAUNCH(kernel_name)                                               \
  do {                                                                                   \
    const cudaError_t ssl_cuda_err_ = cudaGetLastError();                                \
    if (ssl_cuda_err_ != cudaSuccess) [[unlikely]]                                       \
      ::ssl::gpu::throw_cuda_error(ssl_cuda_err_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
