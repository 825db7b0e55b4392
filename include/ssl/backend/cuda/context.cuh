#pragma once
// The CUDA context of the library: one device, one stream, one cuBLAS handle bound to
// that stream, and grow-only workspaces (so steady-state steps allocate nothing).
// Everything the backend does (allocation, copies, kernels, GEMMs) is ordered on
// gpu::stream(); host code sees results after gpu::synchronize() or a to_host copy.
//
//   if (!ssl::gpu::device_available()) ...     // false without a driver or a device
//   ssl::gpu::set_tf32(true);                  // opt in to TF32 tensor-core GEMMs
#include <cstddef>
#include <cstdint>
#include <string>

#include "error.cuh"

namespace ssl::gpu {

/// True when a CUDA device can be used (cudaGetDeviceCount succeeds and finds one).
inline bool device_available() {
  static const bool available = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky "no driver" error
      return false;
    }
    return n > 0;
  }();
  return available;
}

/// Name of device 0, or why there is none.
inline std::string device_name() {
  if (!device_available()) return "no CUDA device";
  cudaDeviceProp p{};
  SSL_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  return p.name;
}

class context {
 public:
  /// The process-wide context (created on first use, never destroyed, so that tensors
  /// with static storage can still free their memory at exit).
  static context& get() {
    static context* c = new context();
    return *c;
  }

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }

  /// TF32 tensor-core math for FP32 GEMMs (off by default: FP32 results match the CPU path).
  void set_tf32(bool on) {
    SSL_CUBLAS_CHECK(cublasSetMathMode(cublas_, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    tf32_ = on;
  }
  bool tf32() const { return tf32_; }

  /// Device scratch of at least n floats in one of a few slots; grows, never shrinks.
  /// Stream-ordered: a later op on the same stream may reuse the slot safely.
  float* workspace(int slot, int64_t n) {
    check<value_error>(slot >= 0 && slot < workspace_slots, "gpu::context::workspace: slot ", slot, " not in [0, ",
                       workspace_slots, ")");
    scratch& s = scratch_[slot];
    if (s.n < n) {
      if (s.ptr) SSL_CUDA_CHECK(cudaFreeAsync(s.ptr, stream_));
      SSL_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&s.ptr), size_t(n) * sizeof(float), stream_));
      s.n = n;
    }
    return s.ptr;
  }

  void synchronize() const { SSL_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  static constexpr int workspace_slots = 10;

 private:
  context() {
    check<backend_error>(device_available(), "ssl CUDA backend: expected a CUDA device, found none (",
                         "cudaGetDeviceCount reports no usable device)");
    SSL_CUDA_CHECK(cudaSetDevice(0));
    SSL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // Keep freed blocks in the stream-ordered pool: after the first step, cudaMallocAsync
    // of the same sizes is a pool hit, not a driver allocation.
    cudaMemPool_t pool;
    SSL_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, 0));
    uint64_t threshold = UINT64_MAX;
    SSL_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    SSL_CUBLAS_CHECK(cublasCreate(&cublas_));
    SSL_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    SSL_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  }

  struct scratch {
    float* ptr = nullptr;
    int64_t n = 0;
  };
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  bool tf32_ = false;
  scratch scratch_[workspace_slots];
};

inline cudaStream_t stream() { return context::get().stream(); }
inline void synchronize() { context::get().synchronize(); }
inline void set_tf32(bool on) { context::get().set_tf32(on); }

}  // namespace ssl::gpu
