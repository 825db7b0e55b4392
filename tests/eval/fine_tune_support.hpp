#pragma once
// Data and a model shared by the fine-tuning tests: two classes of 8x8 grey images and a tiny ViT.
#include <ssl/core/rng.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/tensor/tensor.hpp>
#include <vector>

namespace eval_test {

struct labelled {
  ssl::tensor<ssl::cpu> images;  // (n, 1, 8, 8) in [0, 1]
  std::vector<int> labels;       // n labels in {0, 1}
};

/// Two classes of 8x8 images: uniform noise in [0, 0.7], and the same noise 0.3 brighter.
inline labelled halves(int64_t n, uint64_t seed) {
  labelled d{ssl::tensor<ssl::cpu>(ssl::shape{n, 1, 8, 8}), std::vector<int>(size_t(n))};
  ssl::rng g(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int k = int(g.below(2));
    d.labels[size_t(i)] = k;
    for (int64_t p = 0; p < 64; ++p) d.images.data()[i * 64 + p] = g.uniform(0.0f, 0.7f) + (k == 1 ? 0.3f : 0.0f);
  }
  return d;
}

/// ViT on 8x8 images: 4 patches of 4x4, dim 16, 2 blocks, 2 heads.
inline ssl::vit<> tiny_vit() {
  return ssl::vit<>({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 16, .depth = 2, .heads = 2}, ssl::rng(5));
}

}  // namespace eval_test
