#pragma once
// swiglu<B>: the gated activation of DINOv2's SwiGLU feed-forward (Shazeer 2020, "GLU variants"):
//   x (..., 2H) = [a | b] (x.chunk(2, -1))  ->  y (..., H) = silu(a) * b,  silu(a) = a sigmoid(a).
// No parameters: the block's mlp.w12 (D -> 2H) makes both halves, mlp.w3 (H -> D) reads y.
#include "../backend/cpu/activation.hpp"
#include "saved_input_activation.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/elementwise.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

namespace nn_detail {
struct swiglu_op {
  template <class T>
  static T forward(const T& x) {
    return ops::swiglu_forward(x);
  }
  /// dy (..., H); the op checks it against x (..., 2H).
  template <class T>
  static T backward(const T& x, const T& dy) {
    return ops::swiglu_backward(x, dy);
  }
};
}  // namespace nn_detail

template <class B = cpu>
using swiglu = saved_input_activation<B, nn_detail::swiglu_op>;

}  // namespace ssl
