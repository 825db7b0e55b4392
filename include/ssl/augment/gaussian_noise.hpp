#pragma once
// Additive Gaussian noise: out = clamp(x + σ·z, 0, 1), z ~ N(0, 1) per element, σ drawn uniformly
// from [sigma_lo, sigma_hi]. (torchvision 0.14 has no such transform; this is the usual one.)
#include "augmentation.hpp"

namespace ssl::augment {

struct gaussian_noise {
  float sigma_lo = 0.0f, sigma_hi = 0.1f;

  /// The noise field z (same shape as the image) and σ.
  struct params {
    float sigma = 0;
    tensor<cpu> noise;
  };
  params draw(const tensor<cpu>& img, rng& g) const {
    detail::check_range(sigma_lo, sigma_hi, "gaussian_noise", "sigma");
    params p{g.uniform(sigma_lo, sigma_hi), tensor<cpu>(img.shape())};
    for (int64_t i = 0; i < img.numel(); ++i) p.noise[i] = g.normal();
    return p;
  }
  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "gaussian_noise");
    expect_shape(p.noise, img.shape(), "gaussian_noise: noise field");
    tensor<cpu> out(img.shape());
    const float *src = img.data(), *z = p.noise.data();
    float* dst = out.data();
    for (int64_t i = 0, n = img.numel(); i < n; ++i) dst[i] = detail::clamp01(src[i] + p.sigma * z[i]);
    return out;
  }
  /// Draws σ, then adds the noise element by element (no noise tensor).
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const {
    detail::check_image(img, "gaussian_noise");
    detail::check_range(sigma_lo, sigma_hi, "gaussian_noise", "sigma");
    const float sigma = g.uniform(sigma_lo, sigma_hi);
    tensor<cpu> out(img.shape());
    for (int64_t i = 0; i < img.numel(); ++i) out[i] = detail::clamp01(img[i] + sigma * g.normal());
    return out;
  }
};

}  // namespace ssl::augment
