#pragma once
// Layer normalisation over the last dimension on the CPU.
//   x: (R, D), any leading dims flattened into rows R; w, b: (D)
//   mu_r = mean_d x_rd,  var_r = mean_d (x_rd - mu_r)^2 (biased),  rstd_r = 1 / sqrt(var_r + eps)
//   xhat_rd = (x_rd - mu_r) rstd_r,  y_rd = xhat_rd w_d + b_d
// Backward, with g = dy * w:
//   dx_rd = rstd_r (g_rd - mean_d g_rd - xhat_rd mean_d(g_rd xhat_rd))
//   dw_d += sum_r dy_rd xhat_rd,  db_d += sum_r dy_rd
// Rows are processed in fixed blocks whose partial dw/db are summed in order: deterministic.
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"
#include "../../core/profile.hpp"

namespace ssl::ops {

namespace detail {
inline constexpr int64_t layer_norm_row_block = 32;
}

/// Throws shape_error unless x is (..., D) with w (D).
inline void check_layer_norm_input(const tensor<cpu>& x, const tensor<cpu>& weight, const char* what) {
  const int64_t d = weight.numel();
  check<shape_error>(x.rank() >= 1 && x.dim(-1) == d, what, ": expected input of shape (..., ", d,
                     ") (normalized over the last dimension), got ", x.shape());
}

/// y = layer_norm(x) * w + b. When xhat/rstd are given they receive the normalised input
/// (shape of x) and the per-row 1/std (R) for the backward pass.
inline tensor<cpu> layer_norm_forward(const tensor<cpu>& x, const tensor<cpu>& weight, const tensor<cpu>& bias,
                                      float eps, tensor<cpu>* xhat = nullptr, tensor<cpu>* rstd = nullptr) {
  SSL_PROFILE_SCOPE("layer_norm");
  check_layer_norm_input(x, weight, "layer_norm_forward");
  expect_shape(bias, weight.shape(), "layer_norm_forward bias");
  const int64_t D = weight.numel(), R = D ? x.numel() / D : 0;
  tensor<cpu> y(x.shape());
  if (xhat) *xhat = tensor<cpu>(x.shape());
  if (rstd) *rstd = tensor<cpu>(shape{R});
  const float *xd = x.data(), *w = weight.data(), *b = bias.data();
  float* yd = y.data();
  float* hd = xhat ? xhat->data() : nullptr;
  float* sd = rstd ? rstd->data() : nullptr;
  parallel_for(0, R, [&](int64_t r) {
    const float* xr = xd + r * D;
    float mean = 0.0f;
    for (int64_t d = 0; d < D; ++d) mean += xr[d];
    mean /= float(D);
    float var = 0.0f;
    for (int64_t d = 0; d < D; ++d) var += (xr[d] - mean) * (xr[d] - mean);
    var /= float(D);
    const float s = 1.0f / std::sqrt(var + eps);
    float* yr = yd + r * D;
    for (int64_t d = 0; d < D; ++d) {
      const float h = (xr[d] - mean) * s;
      if (hd) hd[r * D + d] = h;
      yr[d] = h * w[d] + b[d];
    }
    if (sd) sd[r] = s;
  }, 16);
  return y;
}

/// Backward of layer_norm_forward from its saved xhat and rstd: returns dx, accumulates dw, db.
inline tensor<cpu> layer_norm_backward(const tensor<cpu>& xhat, const tensor<cpu>& rstd, const tensor<cpu>& weight,
                                       const tensor<cpu>& dy, tensor<cpu>& dweight, tensor<cpu>& dbias) {
  SSL_PROFILE_SCOPE("layer_norm");
  expect_shape(dy, xhat.shape(), "layer_norm_backward dy");
  expect_shape(dweight, weight.shape(), "layer_norm_backward dw");
  expect_shape(dbias, weight.shape(), "layer_norm_backward db");
  const int64_t D = weight.numel(), R = rstd.numel();
  check<shape_error>(R * D == xhat.numel(), "layer_norm_backward: ", R, " rows of ", D, " do not fit xhat ",
                     xhat.shape());
  tensor<cpu> dx(xhat.shape());
  const int64_t blk = detail::layer_norm_row_block, nblocks = (R + blk - 1) / blk;
  std::vector<float> partial(size_t(nblocks * 2 * D), 0.0f);  // per block: [dw (D), db (D)]
  const float *h = xhat.data(), *s = rstd.data(), *w = weight.data(), *g = dy.data();
  float* out = dx.data();
  parallel_for(0, nblocks, [&](int64_t block_id) {
    float* pw = partial.data() + block_id * 2 * D;
    float* pb = pw + D;
    const int64_t r_end = std::min(R, (block_id + 1) * blk);
    for (int64_t r = block_id * blk; r < r_end; ++r) {
      const float *hr = h + r * D, *gr = g + r * D;
      float mean_g = 0.0f, mean_gh = 0.0f;
      for (int64_t d = 0; d < D; ++d) {
        const float gw = gr[d] * w[d];
        mean_g += gw;
        mean_gh += gw * hr[d];
        pw[d] += gr[d] * hr[d];
        pb[d] += gr[d];
      }
      mean_g /= float(D);
      mean_gh /= float(D);
      float* dr = out + r * D;
      for (int64_t d = 0; d < D; ++d) dr[d] = s[r] * (gr[d] * w[d] - mean_g - hr[d] * mean_gh);
    }
  });
  float *dw = dweight.data(), *db = dbias.data();
  for (int64_t block_id = 0; block_id < nblocks; ++block_id) {
    const float* pw = partial.data() + block_id * 2 * D;
    for (int64_t d = 0; d < D; ++d) {
      dw[d] += pw[d];
      db[d] += pw[D + d];
    }
  }
  return dx;
}

}  // namespace ssl::ops
