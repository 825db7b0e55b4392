#pragma once
// global_avg_pool<B>: x (N, C, H, W) -> y (N, C), y[n, c] = mean_{h, w} x[n, c, h, w]
// (PyTorch AdaptiveAvgPool2d(1) + flatten). Any spatial size. No parameters.
#include <string>

#include "../backend/cpu/pooling.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/pooling.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class global_avg_pool {
 public:
  using backend_type = B;
  /// What backward needs: the input shape.
  struct saved_type {
    shape x_shape;
  };

  output<saved_type, B> forward(const tensor<B>& x) { return {infer(x), saved_type{x.shape()}}; }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> dx;
    ops::global_avg_pool_backward(s.x_shape, dy, dx);
    return dx;
  }
  tensor<B> infer(const tensor<B>& x) const {
    tensor<B> y;
    ops::global_avg_pool_forward(x, y);
    return y;
  }
  void collect(param_list<B>&, const std::string&) {}
};

}  // namespace ssl
