#pragma once
// linear<B>: fully connected layer, y = x W^T + b (torch.nn.Linear).
//   x: (N, in) or tokens (N, T, in) (leading dims are rows)  ->  y: (N, out) / (N, T, out)
//   weight: (out, in), bias: (out) (optional)
// Init (PyTorch default): W, b ~ U(-1/sqrt(in), 1/sqrt(in)) from the constructor's rng.
// reset_trunc_normal / reset_xavier_uniform re-initialise for ViT-style models (bias 0).
#include <cmath>
#include <string>
#include <utility>

#include "../backend/cpu/linear.hpp"
#include "init.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/linear.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class linear {
 public:
  using backend_type = B;
  /// What backward needs: the layer's input.
  struct saved_type {
    tensor<B> x;
  };

  linear() = default;
  linear(int64_t in_features, int64_t out_features, bool with_bias, rng gen)
      : weight_(check_sizes(in_features, out_features), param_kind::weight), has_bias_(with_bias) {
    if (has_bias_) bias_ = parameter<B>(shape{out_features}, param_kind::bias);
    const float bound = 1.0f / std::sqrt(float(in_features));
    init::uniform(weight_.value, gen, -bound, bound);
    if (has_bias_) init::uniform(bias_.value, gen, -bound, bound);
  }
  linear(int64_t in_features, int64_t out_features, bool with_bias = true, uint64_t seed = 0)
      : linear(in_features, out_features, with_bias, rng(seed)) {}

  int64_t in_features() const { return weight_.value.rank() == 2 ? weight_.value.dim(1) : 0; }
  int64_t out_features() const { return weight_.value.rank() == 2 ? weight_.value.dim(0) : 0; }
  bool has_bias() const { return has_bias_; }
  parameter<B>& weight() { return weight_; }
  const parameter<B>& weight() const { return weight_; }
  /// The bias parameter (empty when the layer has none).
  parameter<B>& bias() { return bias_; }
  const parameter<B>& bias() const { return bias_; }

  /// ViT init: W ~ trunc_normal(0, std^2) on [-2, 2], b = 0.
  void reset_trunc_normal(float std, rng gen) {
    init::trunc_normal(weight_.value, gen, std);
    if (has_bias_) bias_.value.zero();
  }
  /// W ~ xavier_uniform (fan_in = in, fan_out = out), b = 0.
  void reset_xavier_uniform(rng gen, float gain = 1.0f) {
    init::xavier_uniform(weight_.value, gen, in_features(), out_features(), gain);
    if (has_bias_) bias_.value.zero();
  }

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Same, taking ownership of x for the saved state (no copy when the caller passes a temporary).
  output<saved_type, B> forward(tensor<B>&& x) {
    check_input(x);
    tensor<B> y = ops::linear_forward(x, weight_.value, bias_ptr());
    return {std::move(y), saved_type{std::move(x)}};
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    shape expected = s.x.shape();
    expected[-1] = out_features();
    expect_shape(dy, expected, "linear::backward dy");
    return ops::linear_backward(s.x, weight_.value, dy, weight_.grad, has_bias_ ? &bias_.grad : nullptr);
  }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    return ops::linear_forward(x, weight_.value, bias_ptr());
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    out.push_back({join_name(prefix, "weight"), &weight_});
    if (has_bias_) out.push_back({join_name(prefix, "bias"), &bias_});
  }

 private:
  static shape check_sizes(int64_t in, int64_t out) {
    check<value_error>(in > 0 && out > 0, "linear: expected positive in/out features, got in = ", in,
                       ", out = ", out);
    return shape{out, in};
  }
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() >= 2 && x.dim(-1) == in_features(), "linear(", in_features(), " -> ",
                       out_features(), "): expected input of shape (N, ", in_features(), ") or (N, T, ",
                       in_features(), "), got ", x.shape());
  }
  const tensor<B>* bias_ptr() const { return has_bias_ ? &bias_.value : nullptr; }

  parameter<B> weight_;
  parameter<B> bias_;
  bool has_bias_ = false;
};

}  // namespace ssl
