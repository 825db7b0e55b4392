#pragma once
// gelu<B>: y = x Phi(x), the exact erf form (torch.nn.GELU(), approximate="none"). Any shape.
#include "../backend/cpu/activation.hpp"
#include "saved_input_activation.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/elementwise.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

namespace nn_detail {
struct gelu_op {
  template <class T>
  static T forward(const T& x) {
    return ops::gelu_forward(x);
  }
  /// dy: the shape of x.
  template <class T>
  static T backward(const T& x, const T& dy) {
    expect_shape(dy, x.shape(), "gelu::backward dy");
    return ops::gelu_backward(x, dy);
  }
};
}  // namespace nn_detail

template <class B = cpu>
using gelu = saved_input_activation<B, nn_detail::gelu_op>;

}  // namespace ssl
