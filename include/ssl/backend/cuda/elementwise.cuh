#pragma once
// Elementwise device ops: fill / zero, y = a x + b y, x + y, and the activations
// relu / gelu / swiglu with the same signatures as backend/cpu/activation.hpp.
#include "../cpu/activation.hpp"  // the CPU reference: both overloads visible together
#include "buffer.cuh"
#include "kernels/elementwise.cuh"

namespace ssl::ops {

/// t = v everywhere (the same as t.fill(v)).
inline void fill(tensor<cuda>& t, float v) { t.fill(v); }
inline void zero(tensor<cuda>& t) { fill(t, 0.0f); }

/// A device tensor of shape s filled with v.
inline tensor<cuda> full(const shape& s, float v) {
  tensor<cuda> t(s);
  fill(t, v);
  return t;
}

/// y = a * x + b * y (same shapes).
inline void axpby(float a, const tensor<cuda>& x, float b, tensor<cuda>& y) {
  expect_shape(x, y.shape(), "axpby x");
  if (y.numel() == 0) return;
  gpu::kernels::axpby<<<gpu::kernels::grid_for(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      a, x.data(), b, y.data(), y.numel());
  SSL_CUDA_CHECK_LAUNCH("axpby");
}

/// x + y (same shapes): the residual connection.
inline tensor<cuda> add(const tensor<cuda>& x, const tensor<cuda>& y) {
  expect_shape(y, x.shape(), "add y");
  tensor<cuda> z(x.shape());
  if (z.numel())
    gpu::kernels::add<<<gpu::kernels::grid_for(z.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), y.data(), z.data(), z.numel());
  SSL_CUDA_CHECK_LAUNCH("add");
  return z;
}

namespace detail {
template <class Kernel>
inline tensor<cuda> unary(Kernel k, const tensor<cuda>& x, const char* name) {
  tensor<cuda> y(x.shape());
  if (x.numel()) {
    k<<<gpu::kernels::grid_for(x.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(x.data(), y.data(), x.numel());
    SSL_CUDA_CHECK_LAUNCH("unary elementwise kernel");
  }
  return y;
}
template <class Kernel>
inline tensor<cuda> binary(Kernel k, const tensor<cuda>& a, const tensor<cuda>& dy, const char* what) {
  expect_shape(dy, a.shape(), what);
  tensor<cuda> dx(a.shape());
  if (a.numel()) {
    k<<<gpu::kernels::grid_for(a.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(a.data(), dy.data(),
                                                                                           dx.data(), a.numel());
    SSL_CUDA_CHECK_LAUNCH("binary elementwise kernel");
  }
  return dx;
}
}  // namespace detail

inline tensor<cuda> relu_forward(const tensor<cuda>& x) { return detail::unary(gpu::kernels::relu_forward, x, "relu"); }
/// y: the forward output.
inline tensor<cuda> relu_backward(const tensor<cuda>& y, const tensor<cuda>& dy) {
  return detail::binary(gpu::kernels::relu_backward, y, dy, "relu_backward dy");
}
inline tensor<cuda> gelu_forward(const tensor<cuda>& x) { return detail::unary(gpu::kernels::gelu_forward, x, "gelu"); }
/// x: the forward input.
inline tensor<cuda> gelu_backward(const tensor<cuda>& x, const tensor<cuda>& dy) {
  return detail::binary(gpu::kernels::gelu_backward, x, dy, "gelu_backward dy");
}

/// y = silu(a) * b with [a | b] = x along the last axis: x (..., 2H) -> y (..., H).
inline tensor<cuda> swiglu_forward(const tensor<cuda>& x) {
  const shape ys = detail::swiglu_output_shape(x.shape(), "swiglu_forward x");  // backend/cpu/activation.hpp
  const int64_t H = ys[-1], rows = x.numel() / (2 * H);
  tensor<cuda> y(ys);
  if (y.numel()) {
    gpu::kernels::swiglu_forward<<<gpu::kernels::grid_for(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), y.data(), rows, H);
    SSL_CUDA_CHECK_LAUNCH("swiglu_forward");
  }
  return y;
}
/// x: the forward input (..., 2H); dy (..., H) -> dx (..., 2H) = [da | db].
inline tensor<cuda> swiglu_backward(const tensor<cuda>& x, const tensor<cuda>& dy) {
  const shape ys = detail::swiglu_output_shape(x.shape(), "swiglu_backward x");
  const int64_t H = ys[-1], rows = x.numel() / (2 * H);
  expect_shape(dy, ys, "swiglu_backward dy");
  tensor<cuda> dx(x.shape());
  if (dy.numel()) {
    gpu::kernels::swiglu_backward<<<gpu::kernels::grid_for(dy.numel()), gpu::kernels::block_size, 0,
                                    gpu::stream()>>>(x.data(), dy.data(), dx.data(), rows, H);
    SSL_CUDA_CHECK_LAUNCH("swiglu_backward");
  }
  return dx;
}

}  // namespace ssl::ops
