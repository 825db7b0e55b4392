#pragma once
// Layer normalisation over the last dimension on the device (contract of backend/cpu/layer_norm.hpp).
#include "../cpu/layer_norm.hpp"  // the CPU reference: both overloads visible together
#include "buffer.cuh"
#include "kernels/layer_norm.cuh"
#include "kernels/linear.cuh"  // column_chunk_rows

namespace ssl::ops {

namespace detail {
/// Threads per row-block: a power of two >= 32 covering D (at most block_reduce_max).
inline int row_threads(int64_t D) {
  int t = 32;
  while (t < D && t < gpu::kernels::block_reduce_max) t *= 2;
  return t;
}
}  // namespace detail

inline void check_layer_norm_input(const tensor<cuda>& x, const tensor<cuda>& weight, const char* what) {
  const int64_t d = weight.numel();
  check<shape_error>(x.rank() >= 1 && x.dim(-1) == d, what, ": expected input of shape (..., ", d,
                     ") (normalized over the last dimension), got ", x.shape());
}

/// y = layer_norm(x) * w + b; xhat (shape of x) and rstd (R) are filled when given.
inline tensor<cuda> layer_norm_forward(const tensor<cuda>& x, const tensor<cuda>& weight, const tensor<cuda>& bias,
                                       float eps, tensor<cuda>* xhat = nullptr, tensor<cuda>* rstd = nullptr) {
  check_layer_norm_input(x, weight, "layer_norm_forward");
  expect_shape(bias, weight.shape(), "layer_norm_forward bias");
  const int64_t D = weight.numel(), R = D ? x.numel() / D : 0;
  tensor<cuda> y(x.shape());
  if (xhat && !(xhat->shape() == x.shape())) *xhat = tensor<cuda>(x.shape());
  if (rstd && !(rstd->shape() == shape{R})) *rstd = tensor<cuda>(shape{R});
  if (R == 0) return y;
  gpu::kernels::layer_norm_forward<<<unsigned(R), detail::row_threads(D), 0, gpu::stream()>>>(
      x.data(), weight.data(), bias.data(), eps, D, y.data(), xhat ? xhat->data() : nullptr,
      rstd ? rstd->data() : nullptr);
  SSL_CUDA_CHECK_LAUNCH("layer_norm_forward");
  return y;
}

/// Returns dx; accumulates dw, db.
inline tensor<cuda> layer_norm_backward(const tensor<cuda>& xhat, const tensor<cuda>& rstd, const tensor<cuda>& weight,
                                        const tensor<cuda>& dy, tensor<cuda>& dweight, tensor<cuda>& dbias) {
  expect_shape(dy, xhat.shape(), "layer_norm_backward dy");
  expect_shape(dweight, weight.shape(), "layer_norm_backward dw");
  expect_shape(dbias, weight.shape(), "layer_norm_backward db");
  const int64_t D = weight.numel(), R = rstd.numel();
  check<shape_error>(R * D == xhat.numel(), "layer_norm_backward: ", R, " rows of ", D, " do not fit xhat ",
                     xhat.shape());
  tensor<cuda> dx(xhat.shape());
  if (R == 0) return dx;
  gpu::kernels::layer_norm_backward_dx<<<unsigned(R), detail::row_threads(D), 0, gpu::stream()>>>(
      xhat.data(), rstd.data(), weight.data(), dy.data(), D, dx.data());
  SSL_CUDA_CHECK_LAUNCH("layer_norm_backward_dx");
  const int64_t chunk_rows = gpu::kernels::column_chunk_rows(R);
  const int64_t chunks = (R + chunk_rows - 1) / chunk_rows;
  float* partial = gpu::context::get().workspace(gpu::context::workspace_slots - 1, chunks * 2 * D);
  const unsigned col_blocks = unsigned((D + 127) / 128);
  gpu::kernels::layer_norm_params_partial<<<dim3(col_blocks, unsigned(chunks)), 128, 0, gpu::stream()>>>(
      xhat.data(), dy.data(), R, D, chunk_rows, partial);
  SSL_CUDA_CHECK_LAUNCH("layer_norm_params_partial");
  gpu::kernels::layer_norm_params_finish<<<col_blocks, 128, 0, gpu::stream()>>>(partial, chunks, D, dweight.data(),
                                                                                 dbias.data());
  SSL_CUDA_CHECK_LAUNCH("layer_norm_params_finish");
  return dx;
}

}  // namespace ssl::ops
