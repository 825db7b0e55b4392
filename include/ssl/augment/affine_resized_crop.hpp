#pragma once
// Random resized crop by affine grid sampling: the crop of /work/shared/WORKLOADS.md's Q3
// policy (batched torch: affine_grid + grid_sample, bilinear, zero padding,
// align_corners=False). The box is continuous (no integer rounding, no retry loop):
//   side fractions  fw = min(1, sqrt(s·r)), fh = min(1, sqrt(s/r)),  s ~ U(scale), log r ~ U(log ratio)
//   centre (cx, cy) in normalised coordinates, uniform in [-(1 - fw), 1 - fw] x [-(1 - fh), 1 - fh]
//   theta = [[fw, 0, cx], [0, fh, cy]]  maps output normalised coords to input normalised coords.
#include <algorithm>
#include <cmath>

#include "resample.hpp"

namespace ssl::augment {

struct affine_resized_crop {
  int size_h = 28, size_w = 28;             // output (H, W)
  float scale_lo = 0.3f, scale_hi = 1.0f;   // crop area fraction
  float ratio_lo = 3.0f / 4.0f, ratio_hi = 4.0f / 3.0f;

  /// Side fractions and centre of the crop in normalised [-1, 1] coordinates.
  struct params {
    float frac_w = 1, frac_h = 1, centre_x = 0, centre_y = 0;
  };

  params draw(const tensor<cpu>& img, rng& g) const {
    detail::check_image(img, "affine_resized_crop");
    detail::check_range(scale_lo, scale_hi, "affine_resized_crop", "scale");
    detail::check_range(ratio_lo, ratio_hi, "affine_resized_crop", "ratio");
    const float s = g.uniform(scale_lo, scale_hi);
    const float r = std::exp(g.uniform(std::log(ratio_lo), std::log(ratio_hi)));
    params p;
    p.frac_w = std::min(1.0f, std::sqrt(s * r));
    p.frac_h = std::min(1.0f, std::sqrt(s / r));
    p.centre_x = (1 - p.frac_w) * g.uniform(-1.0f, 1.0f);
    p.centre_y = (1 - p.frac_h) * g.uniform(-1.0f, 1.0f);
    return p;
  }

  /// grid_sample(img, affine_grid(theta, (1, C, size_h, size_w)), bilinear, zeros, align_corners=False).
  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "affine_resized_crop");
    check<value_error>(size_h > 0 && size_w > 0, "affine_resized_crop: expected a positive output size, got ", size_h, "x",
                       size_w);
    const double W = double(img.dim(2)), H = double(img.dim(1));
    // Output pixel x -> normalised u = (2x + 1)/size_w - 1 -> fw·u + cx -> input pixel ((. + 1)·W - 1)/2.
    const double ax = p.frac_w * W / size_w;
    const double bx = (p.frac_w * (1.0 / size_w - 1.0) + p.centre_x + 1.0) * W / 2 - 0.5;
    const double ay = p.frac_h * H / size_h;
    const double by = (p.frac_h * (1.0 / size_h - 1.0) + p.centre_y + 1.0) * H / 2 - 0.5;
    return sample_affine(img, size_h, size_w, {ax, 0, bx, 0, ay, by}, interpolation::bilinear);
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
