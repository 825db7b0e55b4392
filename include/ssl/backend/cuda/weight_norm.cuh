#pragma once
// Row-wise L2 normalisation and weight normalisation on the device (DINO head), the contracts of
// backend/cpu/weight_norm.hpp:
//   l2_normalize_rows:  y_i = x_i / max(|x_i|, eps);  backward dx_i = (dy_i - y_i (y_i . dy_i)) / |x_i|
//   weight_norm:        W_o = g_o v_o / |v_o|;  backward dg_o += dW_o . u_o, dv_o += g_o/|v_o| (dW_o - (dW_o . u_o) u_o)
// One block per row (fixed-order reductions, in float).
#include "../cpu/weight_norm.hpp"  // the CPU reference: both overloads visible together
#include "buffer.cuh"
#include "kernels/dino.cuh"
#include "layer_norm.cuh"  // detail::row_threads

namespace ssl::ops {

inline tensor<cuda> l2_normalize_rows(const tensor<cuda>& x, tensor<cuda>& norms, float eps = 1e-12f) {
  check<shape_error>(x.rank() >= 2, "l2_normalize_rows: expected (R, D), got ", x.shape());
  const int64_t D = x.dim(-1), R = D ? x.numel() / D : 0;
  tensor<cuda> y(x.shape());
  if (!(norms.shape() == shape{R})) norms = tensor<cuda>(shape{R});
  if (R == 0) return y;
  gpu::kernels::l2_normalize_rows<<<unsigned(R), detail::row_threads(D), 0, gpu::stream()>>>(x.data(), D, eps,
                                                                                              y.data(), norms.data());
  SSL_CUDA_CHECK_LAUNCH("l2_normalize_rows");
  return y;
}

inline tensor<cuda> l2_normalize_rows_backward(const tensor<cuda>& y, const tensor<cuda>& norms,
                                               const tensor<cuda>& dy, float eps = 1e-12f) {
  expect_shape(dy, y.shape(), "l2_normalize_rows_backward dy");
  const int64_t D = y.dim(-1), R = D ? y.numel() / D : 0;
  expect_shape(norms, shape{R}, "l2_normalize_rows_backward norms");
  tensor<cuda> dx(y.shape());
  if (R == 0) return dx;
  gpu::kernels::l2_normalize_rows_backward<<<unsigned(R), detail::row_threads(D), 0, gpu::stream()>>>(
      y.data(), norms.data(), dy.data(), D, eps, dx.data());
  SSL_CUDA_CHECK_LAUNCH("l2_normalize_rows_backward");
  return dx;
}

inline tensor<cuda> weight_norm(const tensor<cuda>& v, const tensor<cuda>& g) {
  check<shape_error>(v.rank() == 2 && g.numel() == v.dim(0),
                     "weight_norm: expected v (out, in) and g with out values, got v ", v.shape(), " and g ", g.shape());
  tensor<cuda> w(v.shape());
  if (v.numel() == 0) return w;
  gpu::kernels::weight_norm<<<unsigned(v.dim(0)), detail::row_threads(v.dim(1)), 0, gpu::stream()>>>(
      v.data(), g.data(), v.dim(1), w.data());
  SSL_CUDA_CHECK_LAUNCH("weight_norm");
  return w;
}

inline void weight_norm_backward(const tensor<cuda>& v, const tensor<cuda>& g, const tensor<cuda>& dw,
                                 tensor<cuda>& dv, tensor<cuda>& dg) {
  expect_shape(dw, v.shape(), "weight_norm_backward dW");
  expect_shape(dv, v.shape(), "weight_norm_backward dv");
  check<shape_error>(dg.numel() == v.dim(0) && g.numel() == v.dim(0), "weight_norm_backward: expected g and dg with ",
                     v.dim(0), " values, got ", g.shape(), " and ", dg.shape());
  if (v.numel() == 0) return;
  gpu::kernels::weight_norm_backward<<<unsigned(v.dim(0)), detail::row_threads(v.dim(1)), 0, gpu::stream()>>>(
      v.data(), g.data(), dw.data(), v.dim(1), dv.data(), dg.data());
  SSL_CUDA_CHECK_LAUNCH("weight_norm_backward");
}

}  // namespace ssl::ops
