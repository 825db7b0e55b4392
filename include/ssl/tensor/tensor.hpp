#pragma once
// ssl::tensor<B>: an owning, contiguous float32 array with a shape, living on backend B.
//
// Value semantics: copying a tensor copies its elements, moving is free.
// CPU tensors expose their storage as Eigen maps for the reference kernels.
#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <new>
#include <vector>

#include "backend_tags.hpp"
#include "shape.hpp"

namespace ssl {

/// Contiguous storage of n floats on backend B. Specialised per backend;
/// the CUDA one lives in backend/cuda/buffer.cuh.
template <class B>
class buffer;

namespace detail {

/// Host memory for tensors: 64-byte aligned blocks. Blocks of at least `cache_threshold`
/// bytes are kept on release and handed out again for the next request of the same size,
/// so a training step that allocates the same activations every step stops asking the
/// system for memory after the first step (glibc would mmap/munmap them, paying page faults
/// every time). The cache holds at most `cache_limit` bytes; `release_cache()` empties it.
class host_allocator {
 public:
  static constexpr size_t cache_threshold = size_t(64) << 10;  // 64 KiB
  static constexpr size_t cache_limit = size_t(4) << 30;       // 4 GiB

  static host_allocator& instance() {
    static host_allocator* a = new host_allocator;  // never destroyed: tensors may outlive statics
    return *a;
  }

  float* allocate(size_t bytes) {
    bytes = round(bytes);
    if (bytes >= cache_threshold) {
      std::lock_guard lk(m_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return static_cast<float*>(p);
      }
      ++system_allocations_;
    }
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<float*>(p);
  }

  void deallocate(float* p, size_t bytes) {
    if (!p) return;
    bytes = round(bytes);
    if (bytes >= cache_threshold) {
      std::lock_guard lk(m_);
      if (cached_ + bytes <= cache_limit) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

  /// Large blocks obtained from the system so far (cache misses): constant in steady state.
  uint64_t system_allocations() const {
    std::lock_guard lk(m_);
    return system_allocations_;
  }
  size_t cached_bytes() const {
    std::lock_guard lk(m_);
    return cached_;
  }
  /// Returns every cached block to the system.
  void release_cache() {
    std::lock_guard lk(m_);
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  static size_t round(size_t bytes) { return ((bytes + 63) / 64) * 64; }
  mutable std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  uint64_t system_allocations_ = 0;
};

/// unique_ptr deleter that returns a block of n floats to the host allocator.
struct host_release {
  int64_t n = 0;
  void operator()(float* p) const { host_allocator::instance().deallocate(p, size_t(n) * sizeof(float)); }
};

}  // namespace detail

/// Large host blocks requested from the system so far (see detail::host_allocator).
inline uint64_t host_system_allocations() { return detail::host_allocator::instance().system_allocations(); }
/// Frees the host allocator's cache of released blocks.
inline void release_host_cache() { detail::host_allocator::instance().release_cache(); }

template <>
class buffer<cpu> {
 public:
  buffer() = default;
  explicit buffer(int64_t n) : n_(n) {
    if (n > 0) ptr_.reset(detail::host_allocator::instance().allocate(size_t(n) * sizeof(float)));
    ptr_.get_deleter().n = n;
  }
  buffer(const buffer& o) : buffer(o.n_) {
    if (n_) std::memcpy(ptr_.get(), o.ptr_.get(), size_t(n_) * sizeof(float));
  }
  buffer& operator=(const buffer& o) {
    if (this != &o) {
      if (n_ != o.n_) *this = buffer(o.n_);
      if (n_) std::memcpy(ptr_.get(), o.ptr_.get(), size_t(n_) * sizeof(float));
    }
    return *this;
  }
  buffer(buffer&& o) noexcept : ptr_(std::move(o.ptr_)), n_(std::exchange(o.n_, 0)) {}
  buffer& operator=(buffer&& o) noexcept {
    ptr_ = std::move(o.ptr_);
    n_ = std::exchange(o.n_, 0);
    return *this;
  }

  float* data() { return ptr_.get(); }
  const float* data() const { return ptr_.get(); }
  int64_t size() const { return n_; }

 private:
  std::unique_ptr<float, detail::host_release> ptr_;
  int64_t n_ = 0;
};

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrix_map = Eigen::Map<row_matrix, Eigen::Aligned64>;
using const_matrix_map = Eigen::Map<const row_matrix, Eigen::Aligned64>;
using vector_map = Eigen::Map<Eigen::VectorXf>;
using const_vector_map = Eigen::Map<const Eigen::VectorXf>;

template <class B = cpu>
class tensor {
  static_assert(backend<B>, "ssl::tensor<B>: B must be a backend tag (ssl::cpu or ssl::cuda)");

 public:
  using backend_type = B;

  tensor() = default;
  explicit tensor(const ssl::shape& s) : shape_(s), buf_(s.numel()) {}
  tensor(const ssl::shape& s, float value) : tensor(s) { fill(value); }

  static tensor zeros(const ssl::shape& s) { return tensor(s, 0.0f); }
  static tensor full(const ssl::shape& s, float v) { return tensor(s, v); }
  /// Tensor of shape s holding `values` (row-major); sizes must agree.
  static tensor from(const ssl::shape& s, const std::vector<float>& values) requires std::same_as<B, cpu> {
    check<shape_error>(int64_t(values.size()) == s.numel(), "tensor::from: shape ", s, " needs ", s.numel(),
                       " values, got ", values.size());
    tensor t(s);
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }

  const ssl::shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  bool empty() const { return numel() == 0; }

  float* data() { return buf_.data(); }
  const float* data() const { return buf_.data(); }

  /// Flat element access (CPU only).
  float& operator[](int64_t i) requires std::same_as<B, cpu> { return buf_.data()[i]; }
  float operator[](int64_t i) const requires std::same_as<B, cpu> { return buf_.data()[i]; }
  /// Multi-index element access (CPU only), bounds-checked.
  template <class... I>
  float& at(I... idx) requires std::same_as<B, cpu> { return buf_.data()[offset(idx...)]; }
  template <class... I>
  float at(I... idx) const requires std::same_as<B, cpu> { return buf_.data()[offset(idx...)]; }

  /// Every element = v (on the device: a kernel on the stream).
  void fill(float v) {
    if constexpr (std::same_as<B, cpu>)
      std::fill_n(data(), numel(), v);
    else
      buf_.fill(v);
  }
  void zero() { fill(0.0f); }

  /// Overwrites the numel() elements from host memory (on the device: a copy on the stream).
  void copy_from_host(const float* src) {
    if constexpr (std::same_as<B, cpu>)
      std::copy_n(src, numel(), data());
    else
      buf_.copy_from_host(src);
  }
  /// Writes the numel() elements to host memory (from the device: waits for the copy).
  void copy_to_host(float* dst) const {
    if constexpr (std::same_as<B, cpu>)
      std::copy_n(data(), numel(), dst);
    else
      buf_.copy_to_host(dst);
  }
  /// Copies n elements of this backend's memory from src to dst (ranges must not overlap).
  static void copy_elements(const float* src, float* dst, int64_t n) {
    if constexpr (std::same_as<B, cpu>)
      std::copy_n(src, n, dst);
    else
      buffer<B>::copy_elements(src, dst, n);
  }

  /// Same elements, new shape (element counts must agree). In place.
  tensor& reshape(const ssl::shape& s) {
    check<shape_error>(s.numel() == numel(), "tensor::reshape: cannot view ", shape_, " (", numel(),
                       " elements) as ", s, " (", s.numel(), " elements)");
    shape_ = s;
    return *this;
  }
  [[nodiscard]] tensor reshaped(const ssl::shape& s) const& { return tensor(*this).reshape(s); }
  [[nodiscard]] tensor reshaped(const ssl::shape& s) && { return std::move(reshape(s)); }

  /// Row-major matrix view: (dim 0, rest) by default, or (rows, cols).
  matrix_map matrix() requires std::same_as<B, cpu> { return matrix(rows(), cols()); }
  const_matrix_map matrix() const requires std::same_as<B, cpu> { return matrix(rows(), cols()); }
  matrix_map matrix(int64_t r, int64_t c) requires std::same_as<B, cpu> {
    check<shape_error>(r * c == numel(), "tensor::matrix: ", r, "x", c, " does not fit shape ", shape_);
    return matrix_map(data(), r, c);
  }
  const_matrix_map matrix(int64_t r, int64_t c) const requires std::same_as<B, cpu> {
    check<shape_error>(r * c == numel(), "tensor::matrix: ", r, "x", c, " does not fit shape ", shape_);
    return const_matrix_map(data(), r, c);
  }
  /// Flat vector view.
  vector_map vec() requires std::same_as<B, cpu> { return vector_map(data(), numel()); }
  const_vector_map vec() const requires std::same_as<B, cpu> { return const_vector_map(data(), numel()); }

  /// Copy to a std::vector (CPU only).
  std::vector<float> to_vector() const requires std::same_as<B, cpu> { return std::vector<float>(data(), data() + numel()); }

 private:
  int64_t rows() const { return rank() == 0 ? 1 : dim(0); }
  int64_t cols() const { return rank() == 0 ? 1 : (dim(0) == 0 ? 0 : numel() / dim(0)); }

  template <class... I>
  int64_t offset(I... idx) const {
    constexpr int n = sizeof...(I);
    check<shape_error>(n == rank(), "tensor::at: ", n, " indices for shape ", shape_);
    const int64_t ids[] = {int64_t(idx)...};
    int64_t off = 0;
    for (int i = 0; i < n; ++i) {
      check<shape_error>(ids[i] >= 0 && ids[i] < shape_[i], "tensor::at: index ", ids[i], " out of range for dimension ",
                         i, " of shape ", shape_);
      off = off * shape_[i] + ids[i];
    }
    return off;
  }

  ssl::shape shape_;
  buffer<B> buf_;
};

/// Throws shape_error unless t has the expected shape.
template <class B>
inline void expect_shape(const tensor<B>& t, const shape& expected, const char* what) {
  expect_shape(t.shape(), expected, what);
}
/// Throws shape_error unless t has rank r.
template <class B>
inline void expect_rank(const tensor<B>& t, int r, const char* what) {
  check<shape_error>(t.rank() == r, what, ": expected a rank-", r, " tensor, got shape ", t.shape());
}

/// A host copy of t: a plain copy on the CPU, a download (waits for the stream) from a device.
/// (backend/cuda/buffer.cuh's to_host(const tensor<cuda>&) is the same for tensor<cuda>.)
template <class B>
tensor<cpu> to_host(const tensor<B>& t) {
  if constexpr (std::same_as<B, cpu>) {
    return t;
  } else {
    tensor<cpu> h(t.shape());
    t.copy_to_host(h.data());
    return h;
  }
}

/// The host tensor h on backend B: a plain copy on the CPU, an upload otherwise.
template <class B>
tensor<B> to_backend(const tensor<cpu>& h) {
  if constexpr (std::same_as<B, cpu>) {
    return h;
  } else {
    tensor<B> t(h.shape());
    t.copy_from_host(h.data());
    return t;
  }
}

}  // namespace ssl
