#pragma once
// Sobel filtering (DeepCluster's input filter): the image is reduced to its luma (RGB) or used as is
// (one channel), then filtered with the two 3x3 Sobel kernels, zero padding 1:
//   gx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]],  gy = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
// (cross-correlation, as conv2d). Output: (2, H, W) = (gx * I, gy * I). Other channel counts are
// averaged over channels first.
#include "color.hpp"

namespace ssl::augment {

struct sobel {
  struct params {};
  params draw(const tensor<cpu>&, rng&) const { return {}; }

  tensor<cpu> apply(const tensor<cpu>& img, const params& = {}) const {
    detail::check_image(img, "sobel");
    const int64_t C = img.dim(0), H = img.dim(1), W = img.dim(2), plane = H * W;
    // intensity I: (H, W)
    std::vector<float> I(size_t(plane), 0.0f);
    if (C == 3) {
      const tensor<cpu> grey = to_grayscale(img, 1);
      std::copy(grey.data(), grey.data() + plane, I.begin());
    } else {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < plane; ++i) I[size_t(i)] += img[c * plane + i] / float(C);
    }
    auto at = [&](int64_t y, int64_t x) { return (y < 0 || y >= H || x < 0 || x >= W) ? 0.0f : I[size_t(y * W + x)]; };
    tensor<cpu> out(shape{2, H, W});
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const float tl = at(y - 1, x - 1), t = at(y - 1, x), tr = at(y - 1, x + 1);
        const float l = at(y, x - 1), r = at(y, x + 1);
        const float bl = at(y + 1, x - 1), b = at(y + 1, x), br = at(y + 1, x + 1);
        out[y * W + x] = (tl - tr) + 2 * (l - r) + (bl - br);
        out[plane + y * W + x] = (tl + 2 * t + tr) - (bl + 2 * b + br);
      }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng&) const { return apply(img); }
};

}  // namespace ssl::augment
