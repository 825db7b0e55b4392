#pragma once
// layer_norm<B>: normalisation over the last dimension (torch.nn.LayerNorm(dim, eps)).
//   x: (..., dim) -> y: (..., dim);  y = (x - mean) / sqrt(var + eps) * weight + bias
//   weight (dim) = 1, bias (dim) = 0 at init, both param_kind::norm.  eps: 1e-5 (PyTorch), ViT uses 1e-6.
// Train and eval modes are the same computation; infer saves nothing.
#include <string>

#include "../backend/cpu/layer_norm.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/layer_norm.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class layer_norm {
 public:
  using backend_type = B;
  /// What backward needs: the normalised input (shape of x) and 1/std per row.
  struct saved_type {
    tensor<B> xhat;
    tensor<B> rstd;
  };

  layer_norm() = default;
  explicit layer_norm(int64_t dim, float eps = 1e-5f)
      : weight_(shape{check_dim(dim)}, param_kind::norm), bias_(shape{dim}, param_kind::norm), eps_(eps) {
    check<value_error>(eps >= 0.0f, "layer_norm: expected eps >= 0, got ", eps);
    weight_.value.fill(1.0f);
  }

  int64_t dim() const { return weight_.value.numel(); }
  float eps() const { return eps_; }
  parameter<B>& weight() { return weight_; }
  parameter<B>& bias() { return bias_; }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    output<saved_type, B> out;
    out.y = ops::layer_norm_forward(x, weight_.value, bias_.value, eps_, &out.saved.xhat, &out.saved.rstd);
    return out;
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    expect_shape(dy, s.xhat.shape(), "layer_norm::backward dy");
    return ops::layer_norm_backward(s.xhat, s.rstd, weight_.value, dy, weight_.grad, bias_.grad);
  }
  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    return ops::layer_norm_forward(x, weight_.value, bias_.value, eps_);
  }
  void collect(param_list<B>& out, const std::string& prefix) {
    out.push_back({join_name(prefix, "weight"), &weight_});
    out.push_back({join_name(prefix, "bias"), &bias_});
  }

 private:
  static int64_t check_dim(int64_t dim) {
    check<value_error>(dim > 0, "layer_norm: expected a positive normalized dimension, got ", dim);
    return dim;
  }
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() >= 1 && x.dim(-1) == dim(), "layer_norm(", dim(), "): expected input of shape (..., ",
                       dim(), "), got ", x.shape());
  }

  parameter<B> weight_;
  parameter<B> bias_;
  float eps_ = 1e-5f;
};

}  // namespace ssl
