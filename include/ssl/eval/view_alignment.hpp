#pragma once
// Alignment and uniformity of a frozen encoder under a view policy (Wang & Isola, ICML 2020):
// two random views of each image, embedded with encoder.infer (eval mode), then the metrics of
// alignment_uniformity.hpp on the features.
//   x_i, y_i = the first two views policy(image_i, rng(seed).fork(i)) returns   each (C', h, w)
//   f_x = infer(x), f_y = infer(y)                                              (count, F)
//   alignment(f_x, f_y) = mean_i ||u(f_x,i) - u(f_y,i)||^2,   u = L2-normalised  (lower: views agree)
//   uniformity = (U(f_x) + U(f_y)) / 2,  U(f) = log mean_{i<j} exp(-2 ||u_i - u_j||^2)  (lower: spread)
// The views must be ready for the encoder (the augment presets normalise them). Pairs depend on
// (images, policy, count, seed) only, so a trained encoder and its random init compared with the
// same seed see identical views.
#include <algorithm>
#include <vector>

#include "../augment/augmentation.hpp"
#include "alignment_uniformity.hpp"
#include "features.hpp"

namespace ssl::eval {

/// Two views of each of `count` images: x (count, C', h, w) and y (same shape), rows i paired.
struct view_pairs {
  tensor<cpu> x, y;
};

/// The first two views of images[0, count) (images: (N, C, H, W) in [0, 1]); image i's views come
/// from rng(seed).fork(i). Throws value_error unless 2 <= count <= N and the policy gives at least
/// two views, shape_error when the two views (or two images' views) differ in shape.
template <ViewPolicy P>
view_pairs draw_view_pairs(const tensor<cpu>& images, const P& policy, int64_t count, uint64_t seed) {
  expect_rank(images, 4, "draw_view_pairs images");
  check<value_error>(count >= 2 && count <= images.dim(0), "draw_view_pairs: expected 2 <= count <= ", images.dim(0),
                     " (the number of images), got ", count);
  const shape image_shape{images.dim(1), images.dim(2), images.dim(3)};
  const int64_t image_size = image_shape.numel();
  view_pairs p;
  shape view_shape;  // image 0's first view: (C', h, w)
  for (int64_t i = 0; i < count; ++i) {
    tensor<cpu> img(image_shape);
    std::copy_n(images.data() + i * image_size, image_size, img.data());
    rng g = rng(seed).fork(uint64_t(i));
    const std::vector<tensor<cpu>> v = policy(img, g);
    check<value_error>(v.size() >= 2, "draw_view_pairs: expected a view policy giving at least 2 views, got ",
                       v.size());
    if (i == 0) {
      view_shape = v[0].shape();
      shape s{count};
      for (int64_t d : view_shape) s.push_back(d);
      p = {tensor<cpu>(s), tensor<cpu>(s)};
    }
    for (int k = 0; k < 2; ++k)
      check<shape_error>(v[size_t(k)].shape() == view_shape, "draw_view_pairs: expected every view of shape ",
                         view_shape, " (image 0's first view), image ", i, "'s view ", k, " has ", v[size_t(k)].shape());
    const int64_t view_size = view_shape.numel();
    std::copy_n(v[0].data(), view_size, p.x.data() + i * view_size);
    std::copy_n(v[1].data(), view_size, p.y.data() + i * view_size);
  }
  return p;
}

/// Alignment and uniformity of encoder's features of the view pairs (draw_view_pairs).
template <class E, ViewPolicy P>
alignment_uniformity_result view_alignment_uniformity(const E& encoder, const tensor<cpu>& images, const P& policy,
                                                      int64_t count, uint64_t seed, int64_t batch = 1000) {
  const view_pairs p = draw_view_pairs(images, policy, count, seed);
  return alignment_uniformity(features_of(encoder, p.x, batch), features_of(encoder, p.y, batch));
}

}  // namespace ssl::eval
