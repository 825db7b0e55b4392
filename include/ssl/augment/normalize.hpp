#pragma once
// Per-channel normalisation (torchvision Normalize): out(c) = (x(c) - mean[c]) / std[c].
// One mean/std value applies to every channel; otherwise there must be one per channel.
#include <vector>

#include "augmentation.hpp"

namespace ssl::augment {

struct normalize {
  std::vector<float> mean{0.2860f};  // Fashion-MNIST train statistics by default
  std::vector<float> std{0.3530f};

  struct params {};
  params draw(const tensor<cpu>&, rng&) const { return {}; }
  tensor<cpu> apply(const tensor<cpu>& img, const params& = {}) const {
    detail::check_image(img, "normalize");
    const int64_t C = img.dim(0), plane = img.dim(1) * img.dim(2);
    check<shape_error>(mean.size() == std.size() && (mean.size() == 1 || int64_t(mean.size()) == C),
                       "normalize: expected 1 or ", C, " mean/std values for an image of shape ", img.shape(), ", got ",
                       mean.size(), " means and ", std.size(), " stds");
    tensor<cpu> out(img.shape());
    for (int64_t c = 0; c < C; ++c) {
      const size_t k = mean.size() == 1 ? 0 : size_t(c);
      check<value_error>(std[k] > 0, "normalize: expected positive std values, got ", std[k]);
      const float m = mean[k], inv = 1.0f / std[k];
      const float* src = img.data() + c * plane;
      float* dst = out.data() + c * plane;
      for (int64_t i = 0; i < plane; ++i) dst[i] = (src[i] - m) * inv;
    }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng&) const { return apply(img); }
};

}  // namespace ssl::augment
