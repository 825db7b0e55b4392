#pragma once
// Gaussian blur (torchvision GaussianBlur / F.gaussian_blur): a separable k-tap kernel,
//   w_i ∝ exp(-x_i² / (2σ²)),  x_i = i - (k-1)/2,  Σ w = 1,
// with reflect padding (edge not repeated), σ drawn uniformly from [sigma_lo, sigma_hi].
// Rows are filtered first into a scratch buffer, then columns, as row-vector updates.
#include <cmath>
#include <vector>

#include "augmentation.hpp"

namespace ssl::augment {

namespace detail {
/// Reflect an index into [0, n) without repeating the edge ("reflect" padding), any distance.
inline int reflect_index(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}
}  // namespace detail

/// Normalised 1-D Gaussian kernel of odd size k.
inline std::vector<float> gaussian_kernel(int k, float sigma) {
  check<value_error>(k > 0 && k % 2 == 1, "gaussian_kernel: expected an odd positive kernel size, got ", k);
  check<value_error>(sigma > 0, "gaussian_kernel: expected a positive sigma, got ", sigma);
  std::vector<double> w(static_cast<size_t>(k));
  double sum = 0;
  for (int i = 0; i < k; ++i) {
    const double x = (i - (k - 1) * 0.5) / sigma;
    w[size_t(i)] = std::exp(-0.5 * x * x);
    sum += w[size_t(i)];
  }
  std::vector<float> out(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) out[size_t(i)] = float(w[size_t(i)] / sum);
  return out;
}

struct gaussian_blur {
  int kernel_size = 23;  // odd; SimCLR/BYOL/DINO use about 10% of the image side
  float sigma_lo = 0.1f, sigma_hi = 2.0f;

  struct params {
    float sigma = 1;
  };
  params draw(const tensor<cpu>&, rng& g) const {
    detail::check_range(sigma_lo, sigma_hi, "gaussian_blur", "sigma");
    return {g.uniform(sigma_lo, sigma_hi)};
  }

  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "gaussian_blur");
    const std::vector<float> w = gaussian_kernel(kernel_size, p.sigma);
    const int C = int(img.dim(0)), H = int(img.dim(1)), W = int(img.dim(2)), r = kernel_size / 2;
    const int64_t plane = int64_t(H) * W;
    tensor<cpu> out(img.shape());
    std::vector<float> padded(static_cast<size_t>(W + 2 * r)), tmp(static_cast<size_t>(plane));
    std::vector<int> row_of(size_t(H + 2 * r)), col_of(size_t(W + 2 * r));
    for (int i = 0; i < H + 2 * r; ++i) row_of[size_t(i)] = detail::reflect_index(i - r, H);
    for (int i = 0; i < W + 2 * r; ++i) col_of[size_t(i)] = detail::reflect_index(i - r, W);
    for (int c = 0; c < C; ++c) {
      const float* src = img.data() + c * plane;
      // rows: tmp(y, x) = Σ_k w_k · src(y, reflect(x + k - r))
      for (int y = 0; y < H; ++y) {
        const float* s = src + int64_t(y) * W;
        for (int i = 0; i < W + 2 * r; ++i) padded[size_t(i)] = s[col_of[size_t(i)]];
        float* t = tmp.data() + int64_t(y) * W;
        for (int x = 0; x < W; ++x) t[x] = 0.0f;
        for (int k = 0; k < kernel_size; ++k) {
          const float wk = w[size_t(k)];
          const float* pk = padded.data() + k;
          for (int x = 0; x < W; ++x) t[x] += wk * pk[x];
        }
      }
      // columns: out(y, x) = Σ_k w_k · tmp(reflect(y + k - r), x)
      float* dst = out.data() + c * plane;
      for (int y = 0; y < H; ++y) {
        float* o = dst + int64_t(y) * W;
        for (int x = 0; x < W; ++x) o[x] = 0.0f;
        for (int k = 0; k < kernel_size; ++k) {
          const float wk = w[size_t(k)];
          const float* t = tmp.data() + int64_t(row_of[size_t(y + k)]) * W;
          for (int x = 0; x < W; ++x) o[x] += wk * t[x];
        }
      }
    }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

/// Odd kernel size of about 10% of the image side (SimCLR's rule; 23 for 224 px, 3 for 28 px).
inline int blur_kernel_for(int image_side) {
  const int k = std::max(3, int(0.1 * image_side));
  return k % 2 ? k : k + 1;
}

}  // namespace ssl::augment
