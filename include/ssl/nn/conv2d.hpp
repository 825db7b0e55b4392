#pragma once
// conv2d<B>: 2-D convolution layer, x (N, C_in, H, W) -> y (N, C_out, HO, WO).
//   y = w ⋆ x + b, w: (C_out, C_in, K, K), b: (C_out) when `bias` is set.
// Any spatial size is accepted (one module runs on 28x28 and 12x12 crops).
// Init as PyTorch's Conv2d: kaiming_uniform(a = sqrt 5) => w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// fan_in = C_in * K * K, drawn from the given ssl::rng.
// Parameters: "weight" (param_kind::weight), "bias" (param_kind::bias).
#include <cmath>
#include <string>
#include <utility>

#include "../backend/cpu/conv2d.hpp"
#include "../core/rng.hpp"
#include "init.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/conv2d.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

struct conv2d_options {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t padding = 0;
  bool bias = true;
};

template <class B = cpu>
class conv2d {
 public:
  using backend_type = B;
  /// What backward needs: the input.
  struct saved_type {
    tensor<B> x;
  };

  conv2d() = default;
  explicit conv2d(const conv2d_options& o, rng gen = rng(0)) : opt_(o) {
    check<value_error>(o.in_channels >= 1 && o.out_channels >= 1 && o.kernel >= 1 && o.stride >= 1 && o.padding >= 0,
                       "conv2d: expected positive channels, kernel and stride and padding >= 0, got in ",
                       o.in_channels, ", out ", o.out_channels, ", kernel ", o.kernel, ", stride ", o.stride,
                       ", padding ", o.padding);
    weight_ = parameter<B>(shape{o.out_channels, o.in_channels, o.kernel, o.kernel}, param_kind::weight);
    const float bound = 1.0f / std::sqrt(float(o.in_channels * o.kernel * o.kernel));
    init::uniform(weight_.value, gen, -bound, bound);
    if (o.bias) {
      bias_ = parameter<B>(shape{o.out_channels}, param_kind::bias);
      init::uniform(bias_.value, gen, -bound, bound);
    }
  }
  conv2d(const conv2d_options& o, uint64_t seed) : conv2d(o, rng(seed)) {}

  const conv2d_options& options() const { return opt_; }
  parameter<B>& weight() { return weight_; }
  const parameter<B>& weight() const { return weight_; }
  parameter<B>& bias() { return bias_; }
  const parameter<B>& bias() const { return bias_; }
  bool has_bias() const { return opt_.bias; }

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Takes ownership of x (no copy) for the saved state.
  output<saved_type, B> forward(tensor<B>&& x) {
    output<saved_type, B> out;
    out.y = infer(x);
    out.saved.x = std::move(x);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> dx;
    ops::conv2d_backward(s.x, weight_.value, dy, opt_.stride, opt_.padding, &dx, weight_.grad,
                         opt_.bias ? &bias_.grad : nullptr);
    return dx;
  }

  /// The same gradients, consuming the saved input: dw (and db) first, then the input is released
  /// and dx computed (it needs only w and dy), so dx reuses the input's memory and the two never
  /// coexist. convnet_s's consuming backward calls this.
  tensor<B> backward(saved_type&& s, const tensor<B>& dy) {
    ops::conv2d_backward_weights(s.x, dy, opt_.stride, opt_.padding, weight_.grad, opt_.bias ? &bias_.grad : nullptr);
    const shape xs = s.x.shape();
    s.x = tensor<B>();
    tensor<B> dx;
    ops::conv2d_backward_input(xs, weight_.value, dy, opt_.stride, opt_.padding, dx);
    return dx;
  }

  /// Like backward, but skips dx (for a first layer whose input needs no gradient).
  void backward_params(const saved_type& s, const tensor<B>& dy) {
    ops::conv2d_backward(s.x, weight_.value, dy, opt_.stride, opt_.padding, nullptr, weight_.grad,
                         opt_.bias ? &bias_.grad : nullptr);
  }

  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    tensor<B> y;
    ops::conv2d_forward(x, weight_.value, opt_.bias ? &bias_.value : nullptr, opt_.stride, opt_.padding, y);
    return y;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    out.push_back({join_name(prefix, "weight"), &weight_});
    if (opt_.bias) out.push_back({join_name(prefix, "bias"), &bias_});
  }

  /// Output shape for an input shape (N, C_in, H, W).
  shape output_shape(const shape& x) const {
    const auto g = ops::conv2d_geometry_of(x, weight_.value.shape(), opt_.stride, opt_.padding);
    return shape{g.batch, g.out_channels, g.out_h, g.out_w};
  }

 private:
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 4 && x.dim(1) == opt_.in_channels, "conv2d: expected input (N, ", opt_.in_channels,
                       ", H, W), got shape ", x.shape());
  }

  conv2d_options opt_;
  parameter<B> weight_;
  parameter<B> bias_;
};

}  // namespace ssl
