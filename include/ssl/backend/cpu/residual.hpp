#pragma once
// Residual join of ResNet blocks, fused with the ReLU that follows it:
//   y = relu(y + shortcut)            (all tensors the same shape, e.g. (N, C, H, W))
//   backward: dy *= (y > 0), and the same gradient flows to both branches.
#include <cstdint>

#include "../../tensor/tensor.hpp"

namespace ssl::ops {

/// Residual join: y = relu(y + shortcut), in place (ResNet's "out += identity; relu(out)").
inline void add_relu_inplace(tensor<cpu>& y, const tensor<cpu>& shortcut) {
  expect_shape(shortcut, y.shape(), "residual add shortcut");
  float* p = y.data();
  const float* s = shortcut.data();
  const int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) {
    const float z = p[i] + s[i];
    p[i] = z > 0.0f ? z : 0.0f;
  }
}
/// Backward of add_relu_inplace given its output y: dy is masked in place by y > 0.
inline void add_relu_backward_inplace(const tensor<cpu>& y, tensor<cpu>& dy) {
  expect_shape(dy, y.shape(), "residual add backward dy");
  const float* p = y.data();
  float* g = dy.data();
  const int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) g[i] = p[i] > 0.0f ? g[i] : 0.0f;
}

}  // namespace ssl::ops
