#pragma once
// The Augmentation and ViewPolicy concepts, and the image conventions every transform shares.
//
// An image is an ssl::tensor<cpu> of shape (C, H, W) holding floats in [0, 1] (before
// normalisation); any channel count is accepted unless a transform says otherwise.
//
// Transforms live in namespace ssl::augment. Every transform is a small struct whose members are its (random-range) settings, with
//   params draw(const tensor<cpu>& img, rng& g) const;   // where it has random parameters
//   tensor<cpu> apply(const tensor<cpu>& img, const params& p) const;  // deterministic
//   tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const;      // apply(img, draw(img, g))
// `apply` is what the torchvision-parity tests call; `operator()` is what policies call.
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../tensor/tensor.hpp"

namespace ssl {

/// Augmentation: a callable `a(img, g) -> tensor<cpu>` taking a (C, H, W) image and a random
/// stream, const-callable so that one instance can serve many worker threads at once.
/// Satisfied by every transform in ssl/augment/ (random_resized_crop, horizontal_flip,
/// color_jitter, gaussian_blur, ...), by compose<...>, random_apply<A> and by any lambda of
/// that signature.
template <class A>
concept Augmentation = requires(const A& a, const tensor<cpu>& img, rng& g) {
  { a(img, g) } -> std::same_as<tensor<cpu>>;
};

/// ViewPolicy: what the data loader consumes, `p(img, g) -> std::vector<tensor<cpu>>`, the
/// views of one image (two for SimCLR/BYOL/MoCo, 2 global + N local for DINO, one for MAE).
/// Satisfied by multi_view<A>, asymmetric_views<A...>, multi_crop<G, L> and the presets.
template <class P>
concept ViewPolicy = requires(const P& p, const tensor<cpu>& img, rng& g) {
  { p(img, g) } -> std::same_as<std::vector<tensor<cpu>>>;
};

namespace augment::detail {

/// Throws shape_error unless img is a non-empty (C, H, W) image.
inline void check_image(const tensor<cpu>& img, const char* who) {
  check<shape_error>(img.rank() == 3, who, ": expected an image of shape (C, H, W), got shape ", img.shape());
  check<shape_error>(img.numel() > 0, who, ": expected a non-empty image, got shape ", img.shape());
}

/// Throws shape_error unless img is a 3-channel (RGB) image.
inline void check_rgb(const tensor<cpu>& img, const char* who) {
  check_image(img, who);
  check<shape_error>(img.dim(0) == 3, who, ": expected an RGB image of shape (3, H, W), got shape ", img.shape());
}

/// Throws value_error unless lo <= hi.
inline void check_range(float lo, float hi, const char* who, const char* what) {
  check<value_error>(lo <= hi, who, ": expected ", what, " range with lo <= hi, got (", lo, ", ", hi, ")");
}

inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/// Σ_i (a·x_i + b·y_i + c·z_i) over n elements (y, z may be null when b, c are 0): 8 float
/// lanes (vectorised) over blocks of 1024 elements, blocks summed in double.
inline double weighted_sum(const float* x, const float* y, const float* z, float a, float b, float c, int64_t n) {
  double total = 0;
  for (int64_t start = 0; start < n; start += 1024) {
    const int64_t end = std::min<int64_t>(n, start + 1024);
    float lane[8] = {};
    int64_t i = start;
    if (y && z) {
      for (; i + 8 <= end; i += 8)
        for (int k = 0; k < 8; ++k) lane[k] += a * x[i + k] + b * y[i + k] + c * z[i + k];
      for (; i < end; ++i) total += double(a * x[i] + b * y[i] + c * z[i]);
    } else {
      for (; i + 8 <= end; i += 8)
        for (int k = 0; k < 8; ++k) lane[k] += a * x[i + k];
      for (; i < end; ++i) total += double(a * x[i]);
    }
    for (float v : lane) total += v;
  }
  return total;
}

}  // namespace augment::detail
}  // namespace ssl
