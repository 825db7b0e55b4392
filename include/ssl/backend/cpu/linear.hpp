#pragma once
// Fully connected layer on the CPU: y = x W^T + b, row by row.
//   x: (R, in), any leading dims flattened into rows R (e.g. tokens (N, T, in))
//   W: (out, in), b: (out) or none, y: (..., out)
// Both products go through ssl::ops::gemm.
#include <cstdint>

#include "../../core/parallel.hpp"
#include "gemm.hpp"
#include "../../core/profile.hpp"

namespace ssl::ops {

/// Throws shape_error unless x is (..., in) for W (out, in); `what` names the caller.
inline void check_linear_input(const tensor<cpu>& x, const tensor<cpu>& weight, const char* what) {
  const int64_t in = weight.dim(1);
  check<shape_error>(x.rank() >= 2 && x.dim(-1) == in, what, ": expected input of shape (N, ", in, ") or (N, T, ", in,
                     ") for weight ", weight.shape(), ", got ", x.shape());
}

/// y = x W^T + b; bias may be null. x: (..., in) -> y: (..., out).
inline tensor<cpu> linear_forward(const tensor<cpu>& x, const tensor<cpu>& weight, const tensor<cpu>* bias) {
  SSL_PROFILE_SCOPE("linear bias");
  check_linear_input(x, weight, "linear_forward");
  const int64_t out = weight.dim(0), in = weight.dim(1);
  const int64_t rows = x.numel() / in;
  shape ys = x.shape();
  ys[-1] = out;
  tensor<cpu> y(ys);
  float beta = 0.0f;
  if (bias) {
    // Start every row of y at b, then add x W^T on top (beta = 1).
    const float* b = bias->data();
    float* yd = y.data();
    parallel_for(0, rows, [&](int64_t r) { std::copy(b, b + out, yd + r * out); }, 256);
    beta = 1.0f;
  }
  gemm(cpu{}, trans::no, trans::yes, rows, out, in, 1.0f, x.data(), in, weight.data(), in, beta, y.data(), out);
  return y;
}

/// Backward of linear_forward: returns dx = dy W (shape of x) and accumulates
///   dW += dy^T x   (out, in)
///   db += sum over rows of dy   (out); skipped when dbias is null.
inline tensor<cpu> linear_backward(const tensor<cpu>& x, const tensor<cpu>& weight, const tensor<cpu>& dy,
                                   tensor<cpu>& dweight, tensor<cpu>* dbias) {
  SSL_PROFILE_SCOPE("linear dbias");
  check_linear_input(x, weight, "linear_backward");
  const int64_t out = weight.dim(0), in = weight.dim(1);
  const int64_t rows = x.numel() / in;
  shape ys = x.shape();
  ys[-1] = out;
  expect_shape(dy, ys, "linear_backward dy");
  expect_shape(dweight, weight.shape(), "linear_backward dW");
  tensor<cpu> dx(x.shape());
  gemm(cpu{}, trans::no, trans::no, rows, in, out, 1.0f, dy.data(), out, weight.data(), in, 0.0f, dx.data(), in);
  gemm(cpu{}, trans::yes, trans::no, out, in, rows, 1.0f, dy.data(), out, x.data(), in, 1.0f, dweight.data(), in);
  if (dbias) {
    expect_shape(*dbias, shape{out}, "linear_backward db");
    // Column sums, rows added in order (deterministic; the inner loop vectorises).
    float* acc = dbias->data();
    const float* g = dy.data();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < out; ++c) acc[c] += g[r * out + c];
  }
  return dx;
}

}  // namespace ssl::ops
