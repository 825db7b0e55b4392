#pragma once
// Brightness then contrast, in that fixed order, with a single clamp at the end: the jitter of
// /work/shared/WORKLOADS.md's Q3 policy (batched torch code, any channel count):
//   x1 = b·x,  out = clamp((x1 - mean(x1))·c + mean(x1), 0, 1),  b ~ U(b_lo, b_hi), c ~ U(c_lo, c_hi)
// mean over the whole image (all channels and pixels).
#include "augmentation.hpp"

namespace ssl::augment {

struct brightness_contrast {
  float brightness_lo = 0.6f, brightness_hi = 1.4f;
  float contrast_lo = 0.6f, contrast_hi = 1.4f;

  struct params {
    float brightness = 1, contrast = 1;
  };
  params draw(const tensor<cpu>&, rng& g) const {
    detail::check_range(brightness_lo, brightness_hi, "brightness_contrast", "brightness");
    detail::check_range(contrast_lo, contrast_hi, "brightness_contrast", "contrast");
    const float b = g.uniform(brightness_lo, brightness_hi);
    return {b, g.uniform(contrast_lo, contrast_hi)};
  }
  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "brightness_contrast");
    const double sum = detail::weighted_sum(img.data(), nullptr, nullptr, 1.0f, 0.0f, 0.0f, img.numel());
    const float mean = float(p.brightness * sum / double(img.numel()));
    // (b·x - mean)·c + mean = (b·c)·x + (1 - c)·mean
    const float scale = p.brightness * p.contrast, bias = (1 - p.contrast) * mean;
    tensor<cpu> out(img.shape());
    const float* src = img.data();
    float* dst = out.data();
    for (int64_t i = 0, n = img.numel(); i < n; ++i) dst[i] = detail::clamp01(scale * src[i] + bias);
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
