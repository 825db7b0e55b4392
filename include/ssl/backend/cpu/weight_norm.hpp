#pragma once
// Row-wise L2 normalisation and weight normalisation on the CPU (DINO head).
//   l2_normalize_rows:  y_i = x_i / max(|x_i|, eps)                (F.normalize(x, dim=-1))
//     backward:         dx_i = (dy_i - y_i (y_i . dy_i)) / |x_i|,   or dy_i / eps where the norm was clamped
//   weight_norm:        W_o = g_o v_o / |v_o|                      (nn.utils.weight_norm, dim 0)
//     v: (out, in), g: (out) or (out, 1), W: (out, in)
//     backward, u_o = v_o / |v_o|:  dg_o += dW_o . u_o,   dv_o += g_o / |v_o| (dW_o - (dW_o . u_o) u_o)
// Rows are independent: parallel over rows, sums in double.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"
#include "../../core/profile.hpp"

namespace ssl::ops {

/// x: (R, D) (any leading dims flattened into rows). Returns y (shape of x); norms (R) gets |x_i|.
inline tensor<cpu> l2_normalize_rows(const tensor<cpu>& x, tensor<cpu>& norms, float eps = 1e-12f) {
  SSL_PROFILE_SCOPE("l2 norm / weight_norm");
  check<shape_error>(x.rank() >= 2, "l2_normalize_rows: expected (R, D), got ", x.shape());
  const int64_t D = x.dim(-1), R = D ? x.numel() / D : 0;
  tensor<cpu> y(x.shape());
  norms = tensor<cpu>(shape{R});
  parallel_for(0, R, [&](int64_t i) {
    const float* xi = x.data() + i * D;
    float* yi = y.data() + i * D;
    double s = 0;
    for (int64_t k = 0; k < D; ++k) s += double(xi[k]) * xi[k];
    const float n = float(std::sqrt(s));
    norms[i] = n;
    const float inv = 1.0f / std::max(n, eps);
    for (int64_t k = 0; k < D; ++k) yi[k] = xi[k] * inv;
  }, 64);
  return y;
}

/// Backward of l2_normalize_rows: y the forward output, norms its |x_i|.
inline tensor<cpu> l2_normalize_rows_backward(const tensor<cpu>& y, const tensor<cpu>& norms, const tensor<cpu>& dy,
                                              float eps = 1e-12f) {
  SSL_PROFILE_SCOPE("l2 norm / weight_norm");
  expect_shape(dy, y.shape(), "l2_normalize_rows_backward dy");
  const int64_t D = y.dim(-1), R = D ? y.numel() / D : 0;
  expect_shape(norms, shape{R}, "l2_normalize_rows_backward norms");
  tensor<cpu> dx(y.shape());
  parallel_for(0, R, [&](int64_t i) {
    const float* yi = y.data() + i * D;
    const float* gi = dy.data() + i * D;
    float* di = dx.data() + i * D;
    const float n = norms[i];
    if (n < eps) {
      for (int64_t k = 0; k < D; ++k) di[k] = gi[k] / eps;
      return;
    }
    double dot = 0;
    for (int64_t k = 0; k < D; ++k) dot += double(yi[k]) * gi[k];
    const float inv = 1.0f / n, d = float(dot);
    for (int64_t k = 0; k < D; ++k) di[k] = (gi[k] - yi[k] * d) * inv;
  }, 64);
  return dx;
}

/// W = g v / |v| row by row. v: (out, in), g: out values ((out) or (out, 1)).
inline tensor<cpu> weight_norm(const tensor<cpu>& v, const tensor<cpu>& g) {
  SSL_PROFILE_SCOPE("l2 norm / weight_norm");
  check<shape_error>(v.rank() == 2 && g.numel() == v.dim(0), "weight_norm: expected v (out, in) and g with out values, got v ",
                     v.shape(), " and g ", g.shape());
  const int64_t O = v.dim(0), I = v.dim(1);
  tensor<cpu> w(v.shape());
  parallel_for(0, O, [&](int64_t o) {
    const float* vo = v.data() + o * I;
    double s = 0;
    for (int64_t k = 0; k < I; ++k) s += double(vo[k]) * vo[k];
    const float scale = g[o] / float(std::max(std::sqrt(s), 1e-30));
    float* wo = w.data() + o * I;
    for (int64_t k = 0; k < I; ++k) wo[k] = vo[k] * scale;
  }, 64);
  return w;
}

/// Backward of weight_norm: accumulates dv (out, in) and dg (out values) from dW (out, in).
inline void weight_norm_backward(const tensor<cpu>& v, const tensor<cpu>& g, const tensor<cpu>& dw, tensor<cpu>& dv,
                                 tensor<cpu>& dg) {
  expect_shape(dw, v.shape(), "weight_norm_backward dW");
  expect_shape(dv, v.shape(), "weight_norm_backward dv");
  check<shape_error>(dg.numel() == v.dim(0) && g.numel() == v.dim(0), "weight_norm_backward: expected g and dg with ",
                     v.dim(0), " values, got ", g.shape(), " and ", dg.shape());
  const int64_t O = v.dim(0), I = v.dim(1);
  parallel_for(0, O, [&](int64_t o) {
    const float* vo = v.data() + o * I;
    const float* go = dw.data() + o * I;
    double s = 0, dot = 0;
    for (int64_t k = 0; k < I; ++k) {
      s += double(vo[k]) * vo[k];
      dot += double(go[k]) * vo[k];
    }
    const double nrm = std::max(std::sqrt(s), 1e-30);
    const double proj = dot / nrm;  // dW_o . u_o
    dg[o] += float(proj);
    const float a = float(g[o] / nrm), b = float(g[o] * proj / (nrm * nrm));
    float* d = dv.data() + o * I;
    for (int64_t k = 0; k < I; ++k) d[k] += a * go[k] - b * vo[k];
  }, 64);
}

}  // namespace ssl::ops
