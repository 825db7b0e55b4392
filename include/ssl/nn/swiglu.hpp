#pragma once
// swiglu<B>: the gated activation of DINOv2's SwiGLU feed-forward (Shazeer 2020, "GLU variants"):
//   x (..., 2H) = [a | b] (x.chunk(2, -1))  ->  y (..., H) = silu(a) * b,  silu(a) = a sigmoid(a).
// No parameters: the block's mlp.w12 (D -> 2H) makes both halves, mlp.w3 (H -> D) reads y.
#include <string>
#include <utility>

#include "../backend/cpu/activation.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/elementwise.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class swiglu {
 public:
  using backend_type = B;
  /// What backward needs: the input [a | b].
  struct saved_type {
    tensor<B> x;
  };

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Same, taking ownership of x for the saved state (no copy when the caller passes a temporary).
  output<saved_type, B> forward(tensor<B>&& x) {
    tensor<B> y = ops::swiglu_forward(x);
    return {std::move(y), saved_type{std::move(x)}};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) { return ops::swiglu_backward(s.x, dy); }
  tensor<B> infer(const tensor<B>& x) const { return ops::swiglu_forward(x); }
  void collect(param_list<B>&, const std::string&) {}
};

}  // namespace ssl
