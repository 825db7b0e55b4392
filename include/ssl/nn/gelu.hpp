#pragma once
// gelu<B>: y = x Phi(x), the exact erf form (torch.nn.GELU(), approximate="none"). Any shape.
#include <string>
#include <utility>

#include "../backend/cpu/activation.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/elementwise.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class gelu {
 public:
  using backend_type = B;
  /// What backward needs: the input.
  struct saved_type {
    tensor<B> x;
  };

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Same, taking ownership of x for the saved state (no copy when the caller passes a temporary).
  output<saved_type, B> forward(tensor<B>&& x) {
    tensor<B> y = ops::gelu_forward(x);
    return {std::move(y), saved_type{std::move(x)}};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    expect_shape(dy, s.x.shape(), "gelu::backward dy");
    return ops::gelu_backward(s.x, dy);
  }
  tensor<B> infer(const tensor<B>& x) const { return ops::gelu_forward(x); }
  void collect(param_list<B>&, const std::string&) {}
};

}  // namespace ssl
