#pragma once
// Random resized crop (torchvision RandomResizedCrop): a box of random area fraction in
// `scale` and aspect ratio (w/h) log-uniform in `ratio`, resized to (size_h, size_w).
#include <cmath>

#include "resample.hpp"

namespace ssl::augment {

struct random_resized_crop {
  int size_h = 224, size_w = 224;            // output (H, W)
  float scale_lo = 0.08f, scale_hi = 1.0f;   // crop area / image area
  float ratio_lo = 3.0f / 4.0f, ratio_hi = 4.0f / 3.0f;  // crop width / height
  interpolation mode = interpolation::bilinear;

  /// Integer crop box in input pixels.
  struct params {
    int top = 0, left = 0, height = 0, width = 0;
  };

  /// torchvision's get_params: 10 tries of (area, log-ratio); fallback to a central crop.
  params draw(const tensor<cpu>& img, rng& g) const {
    detail::check_image(img, "random_resized_crop");
    detail::check_range(scale_lo, scale_hi, "random_resized_crop", "scale");
    detail::check_range(ratio_lo, ratio_hi, "random_resized_crop", "ratio");
    const int H = int(img.dim(1)), W = int(img.dim(2));
    const double area = double(H) * W, log_lo = std::log(ratio_lo), log_hi = std::log(ratio_hi);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * g.uniform(scale_lo, scale_hi);
      const double aspect = std::exp(g.uniform(float(log_lo), float(log_hi)));
      const int w = int(std::nearbyint(std::sqrt(target * aspect)));
      const int h = int(std::nearbyint(std::sqrt(target / aspect)));
      if (w > 0 && w <= W && h > 0 && h <= H)
        return {int(g.below(uint32_t(H - h + 1))), int(g.below(uint32_t(W - w + 1))), h, w};
    }
    const double in_ratio = double(W) / H;
    int w = W, h = H;
    if (in_ratio < ratio_lo) {
      h = std::max(1, int(std::nearbyint(w / double(ratio_lo))));
    } else if (in_ratio > ratio_hi) {
      w = std::max(1, int(std::nearbyint(h * double(ratio_hi))));
    }
    return {(H - h) / 2, (W - w) / 2, h, w};
  }

  /// torchvision.transforms.functional.resized_crop(img, top, left, height, width, size, mode).
  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    return resize_crop(img, p.top, p.left, p.height, p.width, size_h, size_w, mode);
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
