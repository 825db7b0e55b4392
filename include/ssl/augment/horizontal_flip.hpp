#pragma once
// Horizontal flip with probability p (torchvision RandomHorizontalFlip): out(c, y, x) = img(c, y, W-1-x).
#include "augmentation.hpp"

namespace ssl::augment {

struct horizontal_flip {
  float p = 0.5f;  // probability of flipping

  struct params {
    bool flip = true;
  };
  params draw(const tensor<cpu>&, rng& g) const { return {g.bernoulli(p)}; }

  tensor<cpu> apply(const tensor<cpu>& img, const params& q) const {
    detail::check_image(img, "horizontal_flip");
    if (!q.flip) return img;
    const int64_t rows = img.dim(0) * img.dim(1), W = img.dim(2);
    tensor<cpu> out(img.shape());
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = img.data() + r * W;
      float* dst = out.data() + r * W;
      for (int64_t x = 0; x < W; ++x) dst[x] = src[W - 1 - x];
    }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
