#pragma once
// Device memory owned by RAII types, allocated and freed in stream order on gpu::stream():
//   buffer<cuda>      the float storage of tensor<cuda> (copying a tensor copies on the device)
//   gpu::array<T>     device array of another element type (argmax indices, ...)
//   gpu::pinned<T>    page-locked host memory: the staging area of host <-> device copies
// Transfers:
//   to_device(tensor<cpu>) -> tensor<cuda>,  to_host(tensor<cuda>) -> tensor<cpu> (synchronises)
//   copy_to_device(host, dev): once per batch, through a reused pinned staging buffer.
#include <cstring>
#include <memory>
#include <utility>

#include "../../tensor/tensor.hpp"
#include "context.cuh"
#include "kernels/elementwise.cuh"

namespace ssl {

namespace gpu {

/// n elements of T in device memory (cudaMallocAsync / cudaFreeAsync on gpu::stream()).
template <class T>
class array {
 public:
  array() = default;
  explicit array(int64_t n) : n_(n) {
    if (n > 0) {
      T* p = nullptr;
      SSL_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p), size_t(n) * sizeof(T), stream()));
      ptr_.reset(p);
    }
  }
  array(const array& o) : array(o.n_) {
    if (n_) SSL_CUDA_CHECK(cudaMemcpyAsync(ptr_.get(), o.ptr_.get(), bytes(), cudaMemcpyDeviceToDevice, stream()));
  }
  array& operator=(const array& o) {
    if (this != &o) {
      if (n_ != o.n_) *this = array(o.n_);
      if (n_) SSL_CUDA_CHECK(cudaMemcpyAsync(ptr_.get(), o.ptr_.get(), bytes(), cudaMemcpyDeviceToDevice, stream()));
    }
    return *this;
  }
  array(array&&) noexcept = default;
  array& operator=(array&&) noexcept = default;

  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }
  int64_t size() const { return n_; }
  size_t bytes() const { return size_t(n_) * sizeof(T); }

 private:
  struct free_async {
    void operator()(T* p) const { cudaFreeAsync(p, stream()); }  // never throws from a destructor
  };
  std::unique_ptr<T, free_async> ptr_;
  int64_t n_ = 0;
};

/// n elements of T in page-locked host memory (fast, asynchronous DMA copies).
template <class T>
class pinned {
 public:
  pinned() = default;
  explicit pinned(int64_t n) : n_(n) {
    if (n > 0) {
      T* p = nullptr;
      SSL_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p), size_t(n) * sizeof(T)));
      ptr_.reset(p);
    }
  }
  T* data() { return ptr_.get(); }
  int64_t size() const { return n_; }

 private:
  struct free_host {
    void operator()(T* p) const { cudaFreeHost(p); }
  };
  std::unique_ptr<T, free_host> ptr_;
  int64_t n_ = 0;
};

}  // namespace gpu

/// Storage of tensor<cuda>: n floats on the device.
template <>
class buffer<cuda> {
 public:
  buffer() = default;
  explicit buffer(int64_t n) : a_(n) {}
  float* data() { return a_.data(); }
  const float* data() const { return a_.data(); }
  int64_t size() const { return a_.size(); }

  /// Every element = v: a memset for 0, a fill kernel otherwise (stream-ordered).
  void fill(float v) {
    if (size() == 0) return;
    if (v == 0.0f) {
      SSL_CUDA_CHECK(cudaMemsetAsync(data(), 0, a_.bytes(), gpu::stream()));
      return;
    }
    gpu::kernels::fill<<<gpu::kernels::grid_for(size()), gpu::kernels::block_size, 0, gpu::stream()>>>(data(), v,
                                                                                                     size());
    SSL_CUDA_CHECK_LAUNCH("fill");
  }
  /// size() floats from host memory, in stream order; waits, so src may be reused on return
  /// (for parameters and state, not per-batch data: that goes through copy_to_device).
  void copy_from_host(const float* src) {
    if (size() == 0) return;
    SSL_CUDA_CHECK(cudaMemcpyAsync(data(), src, a_.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
    gpu::synchronize();
  }
  /// size() floats to host memory, after the stream's pending work.
  void copy_to_host(float* dst) const {
    if (size() == 0) return;
    SSL_CUDA_CHECK(cudaMemcpyAsync(dst, data(), a_.bytes(), cudaMemcpyDeviceToHost, gpu::stream()));
    gpu::synchronize();
  }
  /// Device-to-device copy of n floats on the stream.
  static void copy_elements(const float* src, float* dst, int64_t n) {
    if (n > 0)
      SSL_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, gpu::stream()));
  }

 private:
  gpu::array<float> a_;
};

/// Copies a host tensor to a new device tensor (pageable source: the copy is staged by the driver).
inline tensor<cuda> to_device(const tensor<cpu>& host) {
  tensor<cuda> dev(host.shape());
  if (host.numel())
    SSL_CUDA_CHECK(cudaMemcpyAsync(dev.data(), host.data(), size_t(host.numel()) * sizeof(float),
                                   cudaMemcpyHostToDevice, gpu::stream()));
  return dev;
}

/// Copies a device tensor to the host; waits for the stream, so the result is ready.
inline tensor<cpu> to_host(const tensor<cuda>& dev) {
  tensor<cpu> host(dev.shape());
  if (dev.numel()) {
    SSL_CUDA_CHECK(cudaMemcpyAsync(host.data(), dev.data(), size_t(dev.numel()) * sizeof(float),
                                   cudaMemcpyDeviceToHost, gpu::stream()));
    gpu::synchronize();
  }
  return host;
}

/// One scalar (element 0) of a device tensor, read back to the host (synchronises).
inline float to_host_scalar(const tensor<cuda>& dev) {
  check<shape_error>(dev.numel() >= 1, "to_host_scalar: expected a non-empty tensor, got shape ", dev.shape());
  float v = 0;
  SSL_CUDA_CHECK(cudaMemcpyAsync(&v, dev.data(), sizeof(float), cudaMemcpyDeviceToHost, gpu::stream()));
  gpu::synchronize();
  return v;
}

namespace gpu {

/// Host -> device copies of whole batches through one reused pinned buffer: the host data is
/// packed into page-locked memory, then one asynchronous DMA moves it. The next upload waits
/// only for the previous DMA out of the staging buffer, not for the kernels of the step.
class uploader {
 public:
  uploader() { SSL_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming)); }
  ~uploader() {
    if (done_) cudaEventDestroy(done_);
  }
  uploader(const uploader&) = delete;
  uploader& operator=(const uploader&) = delete;

  /// dev = host (dev is reshaped/reallocated only when the shape changes).
  void copy(const tensor<cpu>& host, tensor<cuda>& dev) {
    if (!(dev.shape() == host.shape())) dev = tensor<cuda>(host.shape());
    const int64_t n = host.numel();
    if (n == 0) return;
    SSL_CUDA_CHECK(cudaEventSynchronize(done_));  // staging free again (previous DMA finished)
    if (staging_.size() < n) staging_ = pinned<float>(n);
    std::memcpy(staging_.data(), host.data(), size_t(n) * sizeof(float));
    SSL_CUDA_CHECK(cudaMemcpyAsync(dev.data(), staging_.data(), size_t(n) * sizeof(float), cudaMemcpyHostToDevice,
                                   stream()));
    SSL_CUDA_CHECK(cudaEventRecord(done_, stream()));
  }

 private:
  pinned<float> staging_;
  cudaEvent_t done_ = nullptr;
};

}  // namespace gpu

/// dev = host through pinned staging owned by the calling thread (reused across batches).
inline void copy_to_device(const tensor<cpu>& host, tensor<cuda>& dev) {
  thread_local gpu::uploader up;
  up.copy(host, dev);
}

}  // namespace ssl
