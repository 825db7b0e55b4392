#pragma once
// layer_scale<B>: a learned per-channel scale of a residual branch (LayerScale, Touvron et al. 2021,
// "Going deeper with image transformers"; DINOv2's ViT uses it in every block, init 1e-5).
//   x (..., D) -> y = x * gamma  (gamma (D) broadcast over all leading dimensions)
//   backward:  dx = dy * gamma,  dgamma += sum over rows of x * dy
// gamma is param_kind::norm (no weight decay, as DINOv2's param groups) and named `gamma`
// (DINOv2: blocks.<i>.ls1.gamma / ls2.gamma). Starting near 0, each block begins close to the identity.
#include <cmath>
#include <string>
#include <utility>

#include "../backend/cpu/vit_ops.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class layer_scale {
 public:
  using backend_type = B;
  /// What backward needs: the input (for dgamma).
  struct saved_type {
    tensor<B> x;
  };

  layer_scale() = default;
  /// gamma = init_value in every channel (DINOv2: 1e-5; CaiT: 0.1 for shallow, 1e-5 for deep models).
  layer_scale(int64_t dim, float init_value) : gamma_(shape{check_dim(dim)}, param_kind::norm) {
    check<value_error>(std::isfinite(init_value), "layer_scale: expected a finite init value, got ", init_value);
    gamma_.value.fill(init_value);
  }

  int64_t dim() const { return gamma_.value.numel(); }
  parameter<B>& gamma() { return gamma_; }
  const parameter<B>& gamma() const { return gamma_; }

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Takes the branch output by value: it is kept as the saved input without a copy.
  output<saved_type, B> forward(tensor<B>&& x) {
    output<saved_type, B> out;
    out.y = ops::scale_channels(x, gamma_.value);
    out.saved.x = std::move(x);
    return out;
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    return ops::scale_channels_backward(s.x, dy, gamma_.value, gamma_.grad);
  }
  tensor<B> infer(const tensor<B>& x) const { return ops::scale_channels(x, gamma_.value); }
  void collect(param_list<B>& out, const std::string& prefix) { out.push_back({join_name(prefix, "gamma"), &gamma_}); }

 private:
  static int64_t check_dim(int64_t dim) {
    check<value_error>(dim > 0, "layer_scale: expected a positive channel count, got ", dim);
    return dim;
  }

  parameter<B> gamma_;
};

}  // namespace ssl
