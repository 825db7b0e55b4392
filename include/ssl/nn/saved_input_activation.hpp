#pragma once
// saved_input_activation<B, Op>: the module shape shared by the parameter-free activations whose
// backward reads the forward's input (gelu, swiglu). Op gives the two ops:
//   struct Op { static tensor<B> forward(const tensor<B>& x);
//               static tensor<B> backward(const tensor<B>& x, const tensor<B>& dy); };
// Op::backward checks dy against the output shape forward gives x.
#include <string>
#include <utility>

#include "module.hpp"

namespace ssl {

template <class B, class Op>
class saved_input_activation {
 public:
  using backend_type = B;
  /// What backward needs: the input.
  struct saved_type {
    tensor<B> x;
  };

  output<saved_type, B> forward(const tensor<B>& x) { return forward(tensor<B>(x)); }
  /// Same, taking ownership of x for the saved state (no copy when the caller passes a temporary).
  output<saved_type, B> forward(tensor<B>&& x) {
    tensor<B> y = Op::forward(x);
    return {std::move(y), saved_type{std::move(x)}};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) { return Op::backward(s.x, dy); }
  tensor<B> infer(const tensor<B>& x) const { return Op::forward(x); }
  void collect(param_list<B>&, const std::string&) {}
};

}  // namespace ssl
