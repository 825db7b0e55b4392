#pragma once
// Row-wise math shared by the losses, written once:
//   * L2 normalisation of rows and its backward,
//   * log-sum-exp / softmax of a row (max-shifted, so logits of any magnitude are safe),
//   * a few small reductions.
// All inputs are (rows, cols) row-major float32; accumulation is in double where it matters.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <limits>
#include <vector>

#include "../../backend/cpu/gemm.hpp"
#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"

namespace ssl::losses_detail {

/// Rows of x divided by their L2 norm, as torch.nn.functional.normalize: z_i = x_i / max(|x_i|, eps).
struct normalized_rows {
  tensor<cpu> z;              // (R, D)
  std::vector<float> norm;    // |x_i| (unclamped), (R)
  float eps = 1e-12f;
};

// x: (R, D) viewed as R rows of D = numel / R.
inline normalized_rows normalize_rows(const tensor<cpu>& x, int64_t rows, float eps = 1e-12f) {
  normalized_rows out;
  out.eps = eps;
  out.z = tensor<cpu>(x.shape());
  out.norm.assign(size_t(rows), 0.0f);
  const int64_t d = rows == 0 ? 0 : x.numel() / rows;
  parallel_for(0, rows, [&](int64_t i) {
    const float* xi = x.data() + i * d;
    float* zi = out.z.data() + i * d;
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += double(xi[k]) * xi[k];
    const float n = float(std::sqrt(s));
    out.norm[size_t(i)] = n;
    const float inv = 1.0f / std::max(n, eps);
    for (int64_t k = 0; k < d; ++k) zi[k] = xi[k] * inv;
  }, 64);
  return out;
}

// Backward of normalize_rows: dx_i = (dz_i - z_i (z_i . dz_i)) / |x_i|, or dz_i / eps where the norm was clamped.
inline tensor<cpu> normalize_rows_backward(const normalized_rows& n, const tensor<cpu>& dz) {
  tensor<cpu> dx(n.z.shape());
  const int64_t rows = int64_t(n.norm.size());
  const int64_t d = rows == 0 ? 0 : n.z.numel() / rows;
  parallel_for(0, rows, [&](int64_t i) {
    const float* zi = n.z.data() + i * d;
    const float* gi = dz.data() + i * d;
    float* di = dx.data() + i * d;
    const float nrm = n.norm[size_t(i)];
    if (nrm < n.eps) {
      const float inv = 1.0f / n.eps;
      for (int64_t k = 0; k < d; ++k) di[k] = gi[k] * inv;
      return;
    }
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += double(zi[k]) * gi[k];
    const float inv = 1.0f / nrm, fdot = float(dot);
    for (int64_t k = 0; k < d; ++k) di[k] = (gi[k] - zi[k] * fdot) * inv;
  }, 64);
  return dx;
}

/// e^x in float, relative error < 3e-7, exactly 0 below -87.3 (so -inf gives 0), saturating
/// at e^88. Branch-free and call-free so that row loops vectorise (Cephes' expf polynomial).
inline float exp_approx(float x) {
  const bool under = x < -87.3f;
  x = std::min(std::max(x, -87.3f), 88.0f);
  const float t = x * 1.44269504088896341f;                      // x / ln 2
  const int32_t n = int32_t(t + (t >= 0.0f ? 0.5f : -0.5f));    // round to nearest
  const float fn = float(n);
  float r = x - fn * 0.693359375f;                               // x - n ln 2, in two parts
  r -= fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>(uint32_t(n + 127) << 23);  // 2^n
  return under ? 0.0f : p * scale;
}

/// In place: v <- out_scale * softmax(v) over n values (max-shifted; -inf entries give 0).
/// Returns log(sum exp v) of the input.
inline double softmax_inplace(float* v, int64_t n, float out_scale = 1.0f) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; ++k) m = std::max(m, v[k]);
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) {
    const float e = exp_approx(v[k] - m);
    v[k] = e;
    s += e;
  }
  const float mul = out_scale / s;
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) v[k] *= mul;
  return double(m) + std::log(double(s));
}

/// Sum of per-row values in a fixed order (deterministic whatever the thread count).
inline double ordered_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

/// Throws value_error unless t > 0 and finite (temperatures, margins that must be positive).
inline void expect_positive(float t, const char* what) {
  check<value_error>(t > 0.0f && std::isfinite(t), what, ": expected a finite value > 0, got ", t);
}

/// Throws shape_error unless x is a non-empty (N, D) matrix.
inline void expect_embeddings(const tensor<cpu>& x, const char* what) {
  check<shape_error>(x.rank() == 2 && x.dim(0) > 0 && x.dim(1) > 0, what,
                     ": expected non-empty (N, D) embeddings, got shape ", x.shape());
}

}  // namespace ssl::losses_detail
