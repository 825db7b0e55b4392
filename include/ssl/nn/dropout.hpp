#pragma once
// dropout<B>: inverted dropout (torch.nn.Dropout(p)), any shape.
//   forward: y = x * m, m_i = 0 with probability p, else 1/(1-p); the mask is in the saved state
//   backward: dx = dy * m;  infer: identity.
// Reproducible: the mask of the k-th forward call (k = 0, 1, ...) comes from rng(seed).fork(k),
// whatever the number of threads. The call counter is the module's only mutable state.
#include <concepts>
#include <cstdint>
#include <string>

#include "../backend/cpu/dropout.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/dropout.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class dropout {
 public:
  using backend_type = B;
  /// What backward needs: the scaled mask (0 or 1/(1-p)); empty when p = 0.
  struct saved_type {
    tensor<B> mask;
  };

  explicit dropout(float p = 0.5f, uint64_t seed = 0) : p_(p), seed_(seed) {
    check<value_error>(p >= 0.0f && p <= 1.0f, "dropout: expected p in [0, 1], got ", p);
  }

  float p() const { return p_; }
  uint64_t seed() const { return seed_; }
  /// Number of training-mode forward calls so far (the next mask's stream id).
  uint64_t calls() const { return calls_; }
  /// Rewind or advance the call counter, e.g. when resuming from a checkpoint.
  void set_calls(uint64_t k) { calls_ = k; }

  output<saved_type, B> forward(const tensor<B>& x) {
    const uint64_t k = calls_++;
    if (p_ == 0.0f) return {x, saved_type{}};
    tensor<B> mask;  // the same mask on both backends (bit-identical Philox draws)
    if constexpr (std::same_as<B, cpu>)
      mask = ops::dropout_mask(x.shape(), p_, rng(seed_).fork(k));
    else
      mask = ops::dropout_mask(B{}, x.shape(), p_, rng(seed_).fork(k));
    tensor<B> y = ops::multiply(x, mask);
    return {std::move(y), saved_type{std::move(mask)}};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    if (p_ == 0.0f) return dy;
    expect_shape(dy, s.mask.shape(), "dropout::backward dy");
    return ops::multiply(dy, s.mask);
  }
  tensor<B> infer(const tensor<B>& x) const { return x; }
  void collect(param_list<B>&, const std::string&) {}

 private:
  float p_ = 0.5f;
  uint64_t seed_ = 0;
  uint64_t calls_ = 0;
};

}  // namespace ssl
