#pragma once
// 2-D convolution on the device (contract of backend/cpu/conv2d.hpp): im2col of the whole batch
// into a reused workspace, then one cuBLAS GEMM; backward the same way (see kernels/conv2d.cuh).
//   x: (N, C, H, W), w: (O, C, KH, KW), b: (O) or none, y: (N, O, OH, OW)
#include "../cpu/conv2d.hpp"  // conv2d_geometry_of and the CPU reference
#include "gemm.cuh"
#include "kernels/conv2d.cuh"

namespace ssl::ops {

namespace detail {
inline gpu::kernels::conv_dims conv_dims_of(const conv2d_geometry& g) {
  return {g.batch, g.in_channels, g.height, g.width, g.out_channels, g.kernel_h, g.kernel_w,
          g.stride, g.padding, g.out_h, g.out_w};
}
// Workspace slots of the convolution. Slots are shared by all ops: each op is done with its
// slots when it returns, and everything is ordered on one stream.
inline constexpr int conv_col_slot = 0, conv_out_slot = 1, conv_dcol_slot = 2;
}  // namespace detail

inline void conv2d_forward(const tensor<cuda>& x, const tensor<cuda>& w, const tensor<cuda>* bias, int64_t stride,
                           int64_t padding, tensor<cuda>& y) {
  const conv2d_geometry g = conv2d_geometry_of(x.shape(), w.shape(), stride, padding);
  if (bias) expect_shape(*bias, shape{g.out_channels}, "conv2d bias");
  const shape ys{g.batch, g.out_channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cuda>(ys);
  const int64_t K = g.patch_size(), P = g.out_pixels(), O = g.out_channels, cols = g.batch * P;
  if (cols == 0) return;
  gpu::context& ctx = gpu::context::get();
  float* col = ctx.workspace(detail::conv_col_slot, K * cols);
  float* out = ctx.workspace(detail::conv_out_slot, O * cols);
  const auto d = detail::conv_dims_of(g);
  gpu::kernels::im2col<<<gpu::kernels::grid_for(K * cols), gpu::kernels::block_size, 0, gpu::stream()>>>(x.data(), d,
                                                                                                          col);
  SSL_CUDA_CHECK_LAUNCH("im2col");
  gemm(cuda{}, trans::no, trans::no, O, cols, K, 1.0f, w.data(), K, col, cols, 0.0f, out, cols);
  gpu::kernels::unpermute_add_bias<<<gpu::kernels::grid_for(O * cols), gpu::kernels::block_size, 0, gpu::stream()>>>(
      out, bias ? bias->data() : nullptr, g.batch, O, P, y.data());
  SSL_CUDA_CHECK_LAUNCH("unpermute_add_bias");
}

namespace detail {
/// dx = col2im(w^T dyp): dyp (O, N P) is dy in channels-first order (a workspace), dx (x's shape).
inline void conv_input_grad(const conv2d_geometry& g, const tensor<cuda>& w, const float* dyp, tensor<cuda>& dx) {
  const int64_t K = g.patch_size(), O = g.out_channels, cols = g.batch * g.out_pixels();
  float* dcol = gpu::context::get().workspace(conv_dcol_slot, K * cols);
  gemm(cuda{}, trans::yes, trans::no, K, cols, O, 1.0f, w.data(), K, dyp, cols, 0.0f, dcol, cols);
  gpu::kernels::col2im<<<gpu::kernels::grid_for(dx.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      dcol, conv_dims_of(g), dx.data());
  SSL_CUDA_CHECK_LAUNCH("col2im");
}
}  // namespace detail

/// Accumulates dw (+=) and db (+=, when given); writes dx when given.
inline void conv2d_backward(const tensor<cuda>& x, const tensor<cuda>& w, const tensor<cuda>& dy, int64_t stride,
                            int64_t padding, tensor<cuda>* dx, tensor<cuda>& dw, tensor<cuda>* db) {
  const conv2d_geometry g = conv2d_geometry_of(x.shape(), w.shape(), stride, padding);
  expect_shape(dy, shape{g.batch, g.out_channels, g.out_h, g.out_w}, "conv2d backward dy");
  expect_shape(dw, w.shape(), "conv2d backward dw");
  if (db) expect_shape(*db, shape{g.out_channels}, "conv2d backward db");
  if (dx && !(dx->shape() == x.shape())) *dx = tensor<cuda>(x.shape());
  const int64_t K = g.patch_size(), P = g.out_pixels(), O = g.out_channels, cols = g.batch * P;
  if (cols == 0) return;
  gpu::context& ctx = gpu::context::get();
  float* col = ctx.workspace(detail::conv_col_slot, K * cols);
  float* dyp = ctx.workspace(detail::conv_out_slot, O * cols);
  const auto d = detail::conv_dims_of(g);
  gpu::kernels::im2col<<<gpu::kernels::grid_for(K * cols), gpu::kernels::block_size, 0, gpu::stream()>>>(x.data(), d,
                                                                                                          col);
  SSL_CUDA_CHECK_LAUNCH("im2col");
  gpu::kernels::permute_channels_first<<<gpu::kernels::grid_for(O * cols), gpu::kernels::block_size, 0,
                                         gpu::stream()>>>(dy.data(), g.batch, O, P, dyp);
  SSL_CUDA_CHECK_LAUNCH("permute_channels_first");
  // dW (O, K) += dyp (O, cols) col^T (cols, K)
  gemm(cuda{}, trans::no, trans::yes, O, K, cols, 1.0f, dyp, cols, col, cols, 1.0f, dw.data(), K);
  if (db) {
    gpu::kernels::row_sums_add<<<unsigned(O), 256, 0, gpu::stream()>>>(dyp, cols, db->data());
    SSL_CUDA_CHECK_LAUNCH("row_sums_add");
  }
  if (dx) detail::conv_input_grad(g, w, dyp, *dx);
}

/// dw += dy ⋆ x (and db += sum of dy when given): the weight half of conv2d_backward.
inline void conv2d_backward_weights(const tensor<cuda>& x, const tensor<cuda>& dy, int64_t stride, int64_t padding,
                                    tensor<cuda>& dw, tensor<cuda>* db) {
  // w only lends its shape to conv2d_backward's checks; dw has the same one.
  conv2d_backward(x, dw, dy, stride, padding, nullptr, dw, db);
}

/// dx = w^T ⋆ dy for an input of shape x_shape: the input half of conv2d_backward, which needs
/// neither x nor dw (so a caller may release x first).
inline void conv2d_backward_input(const shape& x_shape, const tensor<cuda>& w, const tensor<cuda>& dy, int64_t stride,
                                  int64_t padding, tensor<cuda>& dx) {
  const conv2d_geometry g = conv2d_geometry_of(x_shape, w.shape(), stride, padding);
  expect_shape(dy, shape{g.batch, g.out_channels, g.out_h, g.out_w}, "conv2d backward dy");
  if (!(dx.shape() == x_shape)) dx = tensor<cuda>(x_shape);
  const int64_t P = g.out_pixels(), O = g.out_channels, cols = g.batch * P;
  if (cols == 0) return;
  float* dyp = gpu::context::get().workspace(detail::conv_out_slot, O * cols);
  gpu::kernels::permute_channels_first<<<gpu::kernels::grid_for(O * cols), gpu::kernels::block_size, 0,
                                         gpu::stream()>>>(dy.data(), g.batch, O, P, dyp);
  SSL_CUDA_CHECK_LAUNCH("permute_channels_first");
  detail::conv_input_grad(g, w, dyp, dx);
}

}  // namespace ssl::ops
