#pragma once
// avg_pool2d<B>: x (N, C, H, W) -> y (N, C, HO, WO), y = mean over each kernel x kernel window
// (stride defaults to the kernel; zero padding is counted in the divisor, as PyTorch's AvgPool2d
// with count_include_pad=True; floor output size). No parameters.
#include <cstdint>
#include <string>

#include "../backend/cpu/pooling.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/pooling.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class avg_pool2d {
 public:
  using backend_type = B;
  /// What backward needs: the input shape.
  struct saved_type {
    shape x_shape;
  };

  avg_pool2d() = default;
  /// stride 0 means stride = kernel.
  explicit avg_pool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0)
      : kernel_(kernel), stride_(stride == 0 ? kernel : stride), padding_(padding) {
    check<value_error>(kernel_ >= 1 && stride_ >= 1 && padding_ >= 0 && 2 * padding_ <= kernel_,
                       "avg_pool2d: expected kernel >= 1, stride >= 1, 0 <= padding <= kernel / 2, got kernel ",
                       kernel_, ", stride ", stride_, ", padding ", padding_);
  }

  output<saved_type, B> forward(const tensor<B>& x) { return {infer(x), saved_type{x.shape()}}; }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> dx;
    ops::avg_pool2d_backward(s.x_shape, kernel_, stride_, padding_, dy, dx);
    return dx;
  }
  tensor<B> infer(const tensor<B>& x) const {
    tensor<B> y;
    ops::avg_pool2d_forward(x, kernel_, stride_, padding_, y);
    return y;
  }
  void collect(param_list<B>&, const std::string&) {}

 private:
  int64_t kernel_ = 2, stride_ = 2, padding_ = 0;
};

}  // namespace ssl
