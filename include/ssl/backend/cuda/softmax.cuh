#pragma once
// Softmax and log-softmax over the last dimension of a device tensor (rows R, columns C),
// with their backward passes from the forward output.
#include "buffer.cuh"
#include "kernels/softmax.cuh"
#include "layer_norm.cuh"  // detail::row_threads

namespace ssl::ops {

namespace detail {
inline tensor<cuda> softmax_rows_impl(const tensor<cuda>& x, bool log_output, const char* what) {
  check<shape_error>(x.rank() >= 1 && x.dim(-1) > 0, what, ": expected (..., C) with C > 0, got ", x.shape());
  const int64_t C = x.dim(-1), R = x.numel() / C;
  tensor<cuda> y(x.shape());
  if (R == 0) return y;
  gpu::kernels::softmax_rows<<<unsigned(R), row_threads(C), 0, gpu::stream()>>>(x.data(), y.data(), C, log_output);
  SSL_CUDA_CHECK_LAUNCH("softmax_rows");
  return y;
}
inline tensor<cuda> softmax_rows_backward_impl(const tensor<cuda>& y, const tensor<cuda>& dy, bool log_output,
                                               const char* what) {
  expect_shape(dy, y.shape(), what);
  check<shape_error>(y.rank() >= 1 && y.dim(-1) > 0, what, ": expected (..., C) with C > 0, got ", y.shape());
  const int64_t C = y.dim(-1), R = y.numel() / C;
  tensor<cuda> dx(y.shape());
  if (R == 0) return dx;
  gpu::kernels::softmax_rows_backward<<<unsigned(R), row_threads(C), 0, gpu::stream()>>>(y.data(), dy.data(),
                                                                                          dx.data(), C, log_output);
  SSL_CUDA_CHECK_LAUNCH("softmax_rows_backward");
  return dx;
}
}  // namespace detail

/// p = softmax(x) over the last dimension.
inline tensor<cuda> softmax_rows(const tensor<cuda>& x) { return detail::softmax_rows_impl(x, false, "softmax_rows"); }
/// log softmax(x) over the last dimension.
inline tensor<cuda> log_softmax_rows(const tensor<cuda>& x) {
  return detail::softmax_rows_impl(x, true, "log_softmax_rows");
}
/// dx from p = softmax_rows(x) and dy.
inline tensor<cuda> softmax_rows_backward(const tensor<cuda>& p, const tensor<cuda>& dy) {
  return detail::softmax_rows_backward_impl(p, dy, false, "softmax_rows_backward dy");
}
/// dx from l = log_softmax_rows(x) and dy.
inline tensor<cuda> log_softmax_rows_backward(const tensor<cuda>& l, const tensor<cuda>& dy) {
  return detail::softmax_rows_backward_impl(l, dy, true, "log_softmax_rows_backward dy");
}

}  // namespace ssl::ops
