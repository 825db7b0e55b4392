#pragma once
// max_pool2d<B>: x (N, C, H, W) -> y (N, C, HO, WO), y = max over each kernel x kernel window
// (stride defaults to the kernel, padding counts as -inf, floor output size as PyTorch's MaxPool2d).
// Backward routes dy to each window's argmax. No parameters.
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "../backend/cpu/pooling.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/pooling.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

template <class B = cpu>
class max_pool2d {
 public:
  using backend_type = B;
  /// What backward needs: the input shape and the argmax of every window.
  struct saved_type {
    shape x_shape;
    typename ops::max_pool_argmax<B>::type argmax;  // host vector / device array
  };

  max_pool2d() = default;
  /// stride 0 means stride = kernel.
  explicit max_pool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0)
      : kernel_(kernel), stride_(stride == 0 ? kernel : stride), padding_(padding) {
    check<value_error>(kernel_ >= 1 && stride_ >= 1 && padding_ >= 0 && 2 * padding_ <= kernel_,
                       "max_pool2d: expected kernel >= 1, stride >= 1, 0 <= padding <= kernel / 2, got kernel ",
                       kernel_, ", stride ", stride_, ", padding ", padding_);
  }

  int64_t kernel() const { return kernel_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }

  output<saved_type, B> forward(const tensor<B>& x) {
    output<saved_type, B> out;
    ops::max_pool2d_forward(x, kernel_, stride_, padding_, out.y, &out.saved.argmax);
    out.saved.x_shape = x.shape();
    return out;
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> dx;
    if constexpr (std::same_as<B, cpu>)
      ops::max_pool2d_backward(s.x_shape, s.argmax, dy, dx);
    else  // the device gather needs the window geometry
      ops::max_pool2d_backward(s.x_shape, kernel_, stride_, padding_, s.argmax, dy, dx);
    return dx;
  }
  tensor<B> infer(const tensor<B>& x) const {
    tensor<B> y;
    ops::max_pool2d_forward(x, kernel_, stride_, padding_, y, nullptr);
    return y;
  }
  void collect(param_list<B>&, const std::string&) {}

 private:
  int64_t kernel_ = 2, stride_ = 2, padding_ = 0;
};

}  // namespace ssl
