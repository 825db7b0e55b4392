#pragma once
// Rotations.
//  * rotation: any angle in degrees, counter-clockwise, about the image centre, same output size,
//    zero fill (torchvision F.rotate(img, angle, interpolation, expand=False)); the angle is drawn
//    uniformly from [angle_lo, angle_hi].
//  * right_angle_rotation: exact k·90° counter-clockwise (torch.rot90(img, k, dims=(-2, -1))),
//    k drawn uniformly from {0, 1, 2, 3} (the RotNet pretext task); odd k swaps H and W.
#include <cmath>
#include <numbers>

#include "resample.hpp"

namespace ssl::augment {

struct rotation {
  float angle_lo = -30.0f, angle_hi = 30.0f;  // degrees
  interpolation mode = interpolation::nearest;  // nearest (torchvision's default) or bilinear

  struct params {
    float angle = 0;  // degrees, counter-clockwise
  };
  params draw(const tensor<cpu>&, rng& g) const {
    detail::check_range(angle_lo, angle_hi, "rotation", "angle");
    return {g.uniform(angle_lo, angle_hi)};
  }

  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "rotation");
    const int H = int(img.dim(1)), W = int(img.dim(2));
    // Source = R(-angle) about the centre ((W-1)/2, (H-1)/2), y pointing down:
    //   sx - cx = cos·(x - cx) - sin·(y - cy),  sy - cy = sin·(x - cx) + cos·(y - cy)
    const double a = double(p.angle) * std::numbers::pi / 180.0, c = std::cos(a), s = std::sin(a);
    const double cx = (W - 1) * 0.5, cy = (H - 1) * 0.5;
    const affine_map m = {c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy};
    return sample_affine(img, H, W, m, mode);
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

struct right_angle_rotation {
  struct params {
    int quarter_turns = 0;  // k: rotation by k·90° counter-clockwise
  };
  params draw(const tensor<cpu>&, rng& g) const { return {int(g.below(4))}; }

  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "right_angle_rotation");
    const int64_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
    const int k = ((p.quarter_turns % 4) + 4) % 4;
    const int64_t oh = (k % 2) ? W : H, ow = (k % 2) ? H : W;
    tensor<cpu> out(shape{C, oh, ow});
    for (int64_t c = 0; c < C; ++c) {
      const float* src = img.data() + c * H * W;
      float* dst = out.data() + c * oh * ow;
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          int64_t y = i, x = j;  // source index
          if (k == 1) { y = j; x = W - 1 - i; }
          else if (k == 2) { y = H - 1 - i; x = W - 1 - j; }
          else if (k == 3) { y = H - 1 - j; x = i; }
          dst[i * ow + j] = src[y * W + x];
        }
    }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
