#pragma once
// Row L2 normalisation of device matrices, shared by the cosine-based device losses
// (InfoNCE / MoCo, KoLeo, triplet): the same math as losses_detail::normalize_rows.
//   x: (R, D) viewed as R rows of numel / R;  z_i = x_i / max(|x_i|, eps),  norm_i = |x_i|
//   backward: dx_i = (dz_i - z_i (z_i . dz_i)) / |x_i|, or dz_i / eps where the norm was clamped.
#include <cmath>

#include "buffer.cuh"
#include "kernels/nt_xent.cuh"  // normalize_rows, normalize_rows_backward
#include "layer_norm.cuh"       // detail::row_threads

namespace ssl::ops::detail {

struct unit_rows {
  tensor<cuda> z;     // shaped like x
  tensor<cuda> norm;  // (R)
  float eps = 1e-12f;
};

inline unit_rows normalize_unit_rows(const tensor<cuda>& x, int64_t rows, float eps = 1e-12f) {
  unit_rows u{tensor<cuda>(x.shape()), tensor<cuda>(shape{rows}), eps};
  if (rows == 0 || x.numel() == 0) return u;
  const int64_t D = x.numel() / rows;
  gpu::kernels::normalize_rows<<<unsigned(rows), row_threads(D), 0, gpu::stream()>>>(x.data(), D, eps, u.z.data(),
                                                                                       u.norm.data());
  SSL_CUDA_CHECK_LAUNCH("normalize_rows");
  return u;
}

/// dz: the gradient w.r.t. u.z (same shape); returns the gradient w.r.t. x.
inline tensor<cuda> unit_rows_backward(const unit_rows& u, const float* dz) {
  tensor<cuda> dx(u.z.shape());
  const int64_t rows = u.norm.numel();
  if (rows == 0 || dx.numel() == 0) return dx;
  const int64_t D = dx.numel() / rows;
  gpu::kernels::normalize_rows_backward<<<unsigned(rows), row_threads(D), 0, gpu::stream()>>>(
      u.z.data(), u.norm.data(), dz, D, u.eps, dx.data());
  SSL_CUDA_CHECK_LAUNCH("normalize_rows_backward");
  return dx;
}

/// Throws shape_error unless x is a non-empty (N, D) matrix (as losses_detail::expect_embeddings).
inline void expect_device_embeddings(const tensor<cuda>& x, const char* what) {
  check<shape_error>(x.rank() == 2 && x.dim(0) > 0 && x.dim(1) > 0, what,
                     ": expected non-empty (N, D) embeddings, got shape ", x.shape());
}

/// Throws value_error unless t > 0 and finite.
inline void expect_positive_device(float t, const char* what) {
  check<value_error>(t > 0.0f && std::isfinite(t), what, ": expected a finite value > 0, got ", t);
}

}  // namespace ssl::ops::detail
