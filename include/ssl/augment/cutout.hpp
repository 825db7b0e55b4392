#pragma once
// Cutout / random erasing (torchvision RandomErasing and F.erase; timm's RandomErasing with
// count 1): with probability p, a box of area fraction in [scale_lo, scale_hi] and aspect ratio
// (h/w) log-uniform in [ratio_lo, ratio_hi] is erased in every channel. After 10 failed tries to
// fit a box, the image is unchanged. The fill:
//   fill_mode::constant         every erased value is `value` (torchvision's value=v)
//   fill_mode::per_pixel_noise  every erased value (c, y, x) is drawn uniform in [0, 1): images here
//                               are in [0, 1] before normalisation, so this is the [0, 1]-domain
//                               analogue of timm's mode='pixel' (N(0, 1) per value on normalised
//                               images), MAE's fine-tuning `reprob`; see random_erasing(p).
// Draw order on the rng: the p uniform (only when p < 1), the box tries, then (per_pixel_noise)
// the C x height x width fill values, channel by channel, row by row.
#include <cmath>

#include "augmentation.hpp"

namespace ssl::augment {

struct cutout {
  float scale_lo = 0.02f, scale_hi = 0.33f;
  float ratio_lo = 0.3f, ratio_hi = 3.3f;
  float value = 0.0f;
  enum class fill_mode { constant, per_pixel_noise };
  fill_mode fill = fill_mode::constant;
  float p = 1.0f;  // probability of erasing at all

  /// timm's RandomErasing(probability=p, mode='pixel') as MAE's fine-tuning uses it (reprob 0.25):
  /// scale (0.02, 1/3), ratio (0.3, 1/0.3), uniform [0, 1) per-pixel fill.
  static cutout random_erasing(float probability = 0.25f) {
    cutout c;
    c.scale_hi = 1.0f / 3.0f;
    c.ratio_hi = 1.0f / 0.3f;
    c.fill = fill_mode::per_pixel_noise;
    c.p = probability;
    return c;
  }

  struct params {
    int top = 0, left = 0, height = 0, width = 0;  // height = 0: nothing erased
    tensor<cpu> noise{};                           // per_pixel_noise: the fill (C, height, width)
  };
  params draw(const tensor<cpu>& img, rng& g) const {
    detail::check_image(img, "cutout");
    detail::check_range(scale_lo, scale_hi, "cutout", "scale");
    detail::check_range(ratio_lo, ratio_hi, "cutout", "ratio");
    check<value_error>(p >= 0.0f && p <= 1.0f, "cutout p: expected a probability in [0, 1], got ", p);
    if (p < 1.0f && !g.bernoulli(p)) return {};
    const int H = int(img.dim(1)), W = int(img.dim(2));
    const float area = float(H) * float(W);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const float target = area * g.uniform(scale_lo, scale_hi);
      const float aspect = std::exp(g.uniform(std::log(ratio_lo), std::log(ratio_hi)));
      const int h = int(std::nearbyint(std::sqrt(target * aspect))), w = int(std::nearbyint(std::sqrt(target / aspect)));
      if (h > 0 && h < H && w > 0 && w < W) {
        params box{int(g.below(uint32_t(H - h + 1))), int(g.below(uint32_t(W - w + 1))), h, w};
        if (fill == fill_mode::per_pixel_noise) {
          box.noise = tensor<cpu>({img.dim(0), h, w});
          for (int64_t k = 0; k < box.noise.numel(); ++k) box.noise[k] = g.uniform();
        }
        return box;
      }
    }
    return {};
  }
  /// F.erase(img, top, left, height, width, v), v = `value` or (per_pixel_noise) box.noise.
  tensor<cpu> apply(const tensor<cpu>& img, const params& box) const {
    detail::check_image(img, "cutout");
    const int C = int(img.dim(0)), H = int(img.dim(1)), W = int(img.dim(2));
    check<value_error>(box.top >= 0 && box.left >= 0 && box.height >= 0 && box.width >= 0 &&
                           box.top + box.height <= H && box.left + box.width <= W,
                       "cutout: expected a box inside the ", H, "x", W, " image, got top ", box.top, " left ", box.left,
                       " height ", box.height, " width ", box.width);
    const bool noise = fill == fill_mode::per_pixel_noise && box.height > 0 && box.width > 0;
    if (noise) expect_shape(box.noise, {C, box.height, box.width}, "cutout: per-pixel fill");
    tensor<cpu> out = img;
    for (int c = 0; c < C; ++c)
      for (int y = box.top; y < box.top + box.height; ++y) {
        float* row = out.data() + (int64_t(c) * H + y) * W + box.left;
        if (noise)
          std::copy_n(box.noise.data() + (int64_t(c) * box.height + (y - box.top)) * box.width, box.width, row);
        else
          std::fill_n(row, box.width, value);
      }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
