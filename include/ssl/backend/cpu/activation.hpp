#pragma once
// Elementwise activations on the CPU (any shape).
//   relu: y = max(x, 0),               dx = dy * [y > 0]
//   gelu: y = x Phi(x) = x/2 (1 + erf(x/sqrt 2))  (exact form, torch.nn.GELU()),
//         dx = dy * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
//   swiglu: x (..., 2H) = [a | b] (the two halves of the last axis, torch's x.chunk(2, -1)) -> y (..., H),
//         y = silu(a) * b,  silu(a) = a s(a),  s = sigmoid   (DINOv2's SwiGLUFFN / xformers' SwiGLU)
//         da = dy * b * s(a) (1 + a (1 - s(a))),  db = dy * silu(a)
#include <Eigen/Core>
#include <cmath>
#include <numbers>
#include <utility>
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

namespace detail {
/// The output shape (..., H) of a swiglu input of shape x (..., 2H), checked: a non-empty last
/// axis of even length. Both backends' swiglu_forward / swiglu_backward call it.
inline shape swiglu_output_shape(const shape& x, const char* what) {
  check<shape_error>(x.rank() >= 1 && x[-1] > 0 && x[-1] % 2 == 0, what,
                     ": expected a last axis of even length 2H > 0 (the two halves [a | b]), got ", x);
  shape y = x;
  y[-1] = x[-1] / 2;
  return y;
}
/// Calls f(row_begin, row_end) over blocks of about elementwise_block floats.
template <class F>
inline void for_each_row_block(int64_t rows, int64_t row_len, F&& f) {
  const int64_t per = std::max<int64_t>(1, elementwise_block / std::max<int64_t>(1, row_len));
  for_each_block(rows, std::forward<F>(f), per);
}
}  // namespace detail

/// y = silu(a) * b with [a | b] = x along the last axis: x (..., 2H) -> y (..., H).
inline tensor<cpu> swiglu_forward(const tensor<cpu>& x) {
  SSL_PROFILE_SCOPE("swiglu");
  const shape ys = detail::swiglu_output_shape(x.shape(), "swiglu_forward x");
  const int64_t H = ys[-1], rows = x.numel() / (2 * H);
  tensor<cpu> y(ys);
  const float* xd = x.data();
  float* yd = y.data();
  detail::for_each_row_block(rows, 2 * H, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const detail::const_array_map a(xd + r * 2 * H, H), b(xd + r * 2 * H + H, H);
      detail::array_map(yd + r * H, H) = a / (1.0f + (-a).exp()) * b;
    }
  });
  return y;
}

/// x: the forward input (..., 2H); dy (..., H) -> dx (..., 2H) = [da | db].
inline tensor<cpu> swiglu_backward(const tensor<cpu>& x, const tensor<cpu>& dy) {
  SSL_PROFILE_SCOPE("swiglu");
  const shape ys = detail::swiglu_output_shape(x.shape(), "swiglu_backward x");
  const int64_t H = ys[-1], rows = x.numel() / (2 * H);
  expect_shape(dy, ys, "swiglu_backward dy");
  tensor<cpu> dx(x.shape());
  const float *xd = x.data(), *g = dy.data();
  float* d = dx.data();
  detail::for_each_row_block(rows, 2 * H, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const detail::const_array_map a(xd + r * 2 * H, H), b(xd + r * 2 * H + H, H), gy(g + r * H, H);
      const Eigen::ArrayXf s = 1.0f / (1.0f + (-a).exp());
      detail::array_map(d + r * 2 * H, H) = gy * b * s * (1.0f + a * (1.0f - s));
      detail::array_map(d + r * 2 * H + H, H) = gy * a * s;
    }
  });
  return dx;
}

}  // namespace ssl::ops
