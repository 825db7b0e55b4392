#pragma once
// relu<B>: y = max(x, 0), any shape (torch.nn.ReLU). No parameters.
#include <string>

#include "../backend/cpu/activation.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/elementwise.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class relu {
 public:
  using backend_type = B;
  /// What backward needs: the output (y > 0 exactly where x > 0).
  struct saved_type {
    tensor<B> y;
  };

  output<saved_type, B> forward(const tensor<B>& x) {
    tensor<B> y = ops::relu_forward(x);
    saved_type s{y};
    return {std::move(y), std::move(s)};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    expect_shape(dy, s.y.shape(), "relu::backward dy");
    return ops::relu_backward(s.y, dy);
  }
  tensor<B> infer(const tensor<B>& x) const { return ops::relu_forward(x); }
  void collect(param_list<B>&, const std::string&) {}
};

}  // namespace ssl
