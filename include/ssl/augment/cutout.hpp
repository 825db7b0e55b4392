#pragma once
// Cutout / random erasing (torchvision RandomErasing with p = 1 and F.erase): a box of area
// fraction in [scale_lo, scale_hi] and aspect ratio (h/w) log-uniform in [ratio_lo, ratio_hi] is
// set to `value` in every channel. After 10 failed tries to fit a box, the image is unchanged.
#include <cmath>

#include "augmentation.hpp"

namespace ssl::augment {

struct cutout {
  float scale_lo = 0.02f, scale_hi = 0.33f;
  float ratio_lo = 0.3f, ratio_hi = 3.3f;
  float value = 0.0f;

  struct params {
    int top = 0, left = 0, height = 0, width = 0;  // height = 0: nothing erased
  };
  params draw(const tensor<cpu>& img, rng& g) const {
    detail::check_image(img, "cutout");
    detail::check_range(scale_lo, scale_hi, "cutout", "scale");
    detail::check_range(ratio_lo, ratio_hi, "cutout", "ratio");
    const int H = int(img.dim(1)), W = int(img.dim(2));
    const float area = float(H) * float(W);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const float target = area * g.uniform(scale_lo, scale_hi);
      const float aspect = std::exp(g.uniform(std::log(ratio_lo), std::log(ratio_hi)));
      const int h = int(std::nearbyint(std::sqrt(target * aspect))), w = int(std::nearbyint(std::sqrt(target / aspect)));
      if (h > 0 && h < H && w > 0 && w < W)
        return {int(g.below(uint32_t(H - h + 1))), int(g.below(uint32_t(W - w + 1))), h, w};
    }
    return {};
  }
  /// F.erase(img, top, left, height, width, value).
  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "cutout");
    const int C = int(img.dim(0)), H = int(img.dim(1)), W = int(img.dim(2));
    check<value_error>(p.top >= 0 && p.left >= 0 && p.height >= 0 && p.width >= 0 && p.top + p.height <= H &&
                           p.left + p.width <= W,
                       "cutout: expected a box inside the ", H, "x", W, " image, got top ", p.top, " left ", p.left,
                       " height ", p.height, " width ", p.width);
    tensor<cpu> out = img;
    for (int c = 0; c < C; ++c)
      for (int y = p.top; y < p.top + p.height; ++y)
        std::fill_n(out.data() + (int64_t(c) * H + y) * W + p.left, p.width, value);
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
