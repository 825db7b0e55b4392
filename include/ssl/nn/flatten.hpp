#pragma once
// flatten<B>: (N, d1, d2, ...) -> (N, d1*d2*...) (torch.nn.Flatten()). No parameters, no copy
// beyond the returned tensor.
#include <string>

#include "module.hpp"

namespace ssl {

template <class B = cpu>
class flatten {
 public:
  using backend_type = B;
  /// What backward needs: the input shape.
  struct saved_type {
    shape input_shape;
  };

  output<saved_type, B> forward(const tensor<B>& x) { return {infer(x), saved_type{x.shape()}}; }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    expect_shape(dy, flat_shape(s.input_shape), "flatten::backward dy");
    return dy.reshaped(s.input_shape);
  }
  tensor<B> infer(const tensor<B>& x) const { return x.reshaped(flat_shape(x.shape())); }
  void collect(param_list<B>&, const std::string&) {}

  /// (N, ...) -> (N, prod(...)).
  static shape flat_shape(const shape& s) {
    check<shape_error>(s.rank() >= 1, "flatten: expected input of shape (N, ...), got a rank-0 tensor ", s);
    const int64_t n = s[0];
    return shape{n, n == 0 ? 0 : s.numel() / n};
  }
};

}  // namespace ssl
