#pragma once
// Elementwise activations on the CPU (any shape).
//   relu: y = max(x, 0),               dx = dy * [y > 0]
//   gelu: y = x Phi(x) = x/2 (1 + erf(x/sqrt 2))  (exact form, torch.nn.GELU()),
//         dx = dy * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
#include <Eigen/Core>
#include <cmath>
#include <numbers>
#include <unsupported/Eigen/SpecialFunctions>

#include "elementwise.hpp"
#include "../../tensor/tensor.hpp"
#include "../../core/profile.hpp"

namespace ssl::ops {

namespace detail {
using array_map = Eigen::Map<Eigen::ArrayXf>;
using const_array_map = Eigen::Map<const Eigen::ArrayXf>;
}  // namespace detail

inline tensor<cpu> relu_forward(const tensor<cpu>& x) {
  tensor<cpu> y(x.shape());
  const float* xd = x.data();
  float* yd = y.data();
  detail::for_each_block(x.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) yd[i] = xd[i] > 0.0f ? xd[i] : 0.0f;
  });
  return y;
}

/// y: the forward output (y > 0 exactly where x > 0).
inline tensor<cpu> relu_backward(const tensor<cpu>& y, const tensor<cpu>& dy) {
  expect_shape(dy, y.shape(), "relu_backward dy");
  tensor<cpu> dx(y.shape());
  const float *yd = y.data(), *g = dy.data();
  float* d = dx.data();
  detail::for_each_block(y.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = yd[i] > 0.0f ? g[i] : 0.0f;
  });
  return dx;
}

inline tensor<cpu> gelu_forward(const tensor<cpu>& x) {
  SSL_PROFILE_SCOPE("gelu");
  constexpr float inv_sqrt2 = float(1.0 / std::numbers::sqrt2);
  tensor<cpu> y(x.shape());
  const float* xd = x.data();
  float* yd = y.data();
  detail::for_each_block(x.numel(), [&](int64_t b, int64_t e) {
    const detail::const_array_map v(xd + b, e - b);
    detail::array_map(yd + b, e - b) = 0.5f * v * (1.0f + (v * inv_sqrt2).erf());  // Eigen's vectorised erf
  });
  return y;
}

/// x: the forward input.
inline tensor<cpu> gelu_backward(const tensor<cpu>& x, const tensor<cpu>& dy) {
  SSL_PROFILE_SCOPE("gelu");
  expect_shape(dy, x.shape(), "gelu_backward dy");
  constexpr float inv_sqrt2 = float(1.0 / std::numbers::sqrt2);
  constexpr float inv_sqrt2pi = float(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
  tensor<cpu> dx(x.shape());
  const float *xd = x.data(), *g = dy.data();
  float* d = dx.data();
  detail::for_each_block(x.numel(), [&](int64_t b, int64_t e) {
    const detail::const_array_map v(xd + b, e - b);
    const auto cdf = 0.5f * (1.0f + (v * inv_sqrt2).erf());
    const auto pdf = inv_sqrt2pi * (-0.5f * v.square()).exp();
    detail::array_map(d + b, e - b) = detail::const_array_map(g + b, e - b) * (cdf + v * pdf);
  });
  return dx;
}

}  // namespace ssl::ops
