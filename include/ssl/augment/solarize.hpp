#pragma once
// Solarization (torchvision F.solarize on float images): out = x >= threshold ? 1 - x : x.
// Wrap in random_apply for RandomSolarize(threshold, p).
#include "augmentation.hpp"

namespace ssl::augment {

struct solarize {
  float threshold = 0.5f;

  struct params {};
  params draw(const tensor<cpu>&, rng&) const { return {}; }
  tensor<cpu> apply(const tensor<cpu>& img, const params& = {}) const {
    detail::check_image(img, "solarize");
    tensor<cpu> out(img.shape());
    const float* src = img.data();
    float* dst = out.data();
    for (int64_t i = 0, n = img.numel(); i < n; ++i) dst[i] = src[i] >= threshold ? 1.0f - src[i] : src[i];
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng&) const { return apply(img); }
};

}  // namespace ssl::augment
