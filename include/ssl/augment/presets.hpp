#pragma once
// View policies of the papers (official code defaults), scaled for small images by parameters.
//
// Most methods share one pipeline type, `standard_view` =
//   random_resized_crop -> horizontal_flip -> [p] color_jitter -> [p] grayscale -> [p] gaussian_blur
//   -> [p] solarize -> normalize
// whose settings differ per paper (a probability of 0 switches a step off):
//
// | preset          | crop scale  | jitter (b, c, s, h), p      | grey p | blur p      | solarize p | views |
// |-----------------|-------------|-----------------------------|--------|-------------|------------|-------|
// | simclr_views    | (0.08, 1)   | 0.8·(s, s, s, 0.25 s), 0.8  | 0.2    | 0.5         | 0          | 2     |
// | mocov2_views    | (0.2, 1)    | (0.4, 0.4, 0.4, 0.1), 0.8   | 0.2    | 0.5         | 0          | 2     |
// | byol_views      | (0.08, 1)   | (0.4, 0.4, 0.2, 0.1), 0.8   | 0.2    | 1.0 / 0.1   | 0 / 0.2    | 2     |
// | dino_views      | (0.4, 1) global, (0.05, 0.4) local | (0.4, 0.4, 0.2, 0.1), 0.8 | 0.2 | 1.0 / 0.1 / 0.5 | 0 / 0.2 / 0 | 2 + n |
// | swav_views      | (0.14, 1) large, (0.05, 0.14) small | 0.8·(0.8, 0.8, 0.8, 0.2), 0.8 | 0.2 | 0.5 | 0 | 2 + n |
// | mae_views       | (0.2, 1), bicubic, flip only, no colour                                       | 1     |
// | fashion_mnist_simclr | WORKLOADS.md Q3: affine crop (0.3, 1), flip, p 0.8 brightness·contrast (0.6, 1.4) | 2 |
//
// Blur: σ ~ U(0.1, 2), kernel about 10% of the crop side (odd). Normalisation defaults to the
// ImageNet statistics; pass your dataset's (e.g. normalize{{0.2860f}, {0.3530f}} for Fashion-MNIST).
#include <vector>

#include "affine_resized_crop.hpp"
#include "brightness_contrast.hpp"
#include "color_jitter.hpp"
#include "compose.hpp"
#include "gaussian_blur.hpp"
#include "grayscale.hpp"
#include "horizontal_flip.hpp"
#include "multi_crop.hpp"
#include "multi_view.hpp"
#include "normalize.hpp"
#include "random_apply.hpp"
#include "random_resized_crop.hpp"
#include "solarize.hpp"

namespace ssl::augment {

/// ImageNet channel statistics (the papers' normalisation).
inline normalize imagenet_normalize() { return normalize{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }
/// Fashion-MNIST train statistics (WORKLOADS.md).
inline normalize fashion_mnist_normalize() { return normalize{{0.2860f}, {0.3530f}}; }

using standard_view = compose<random_resized_crop, horizontal_flip, random_apply<color_jitter>, random_apply<grayscale>,
                              random_apply<gaussian_blur>, random_apply<solarize>, normalize>;

/// Settings of one standard_view.
struct view_settings {
  int size = 224;                           // output side
  float scale_lo = 0.08f, scale_hi = 1.0f;  // crop area fraction
  interpolation mode = interpolation::bilinear;
  float flip_p = 0.5f;
  color_jitter jitter{0.4f, 0.4f, 0.4f, 0.1f};
  float jitter_p = 0.8f;
  float grayscale_p = 0.2f;
  float blur_p = 0.5f;
  float blur_sigma_lo = 0.1f, blur_sigma_hi = 2.0f;
  int blur_kernel = 0;  // 0: blur_kernel_for(size)
  float solarize_p = 0.0f;
  normalize norm = imagenet_normalize();
};

inline standard_view make_view(const view_settings& s) {
  check<value_error>(s.size > 0, "make_view: expected a positive crop size, got ", s.size);
  random_resized_crop crop;
  crop.size_h = crop.size_w = s.size;
  crop.scale_lo = s.scale_lo;
  crop.scale_hi = s.scale_hi;
  crop.mode = s.mode;
  const int k = s.blur_kernel > 0 ? s.blur_kernel : blur_kernel_for(s.size);
  return standard_view(crop, horizontal_flip{s.flip_p}, random_apply{s.jitter_p, s.jitter},
                       random_apply{s.grayscale_p, grayscale{}},
                       random_apply{s.blur_p, gaussian_blur{k, s.blur_sigma_lo, s.blur_sigma_hi}},
                       random_apply{s.solarize_p, solarize{0.5f}}, s.norm);
}

/// SimCLR (Chen et al. 2020): two views; colour strength s; blur p 0.5 (the CIFAR recipe sets blur_p = 0).
inline multi_view<standard_view> simclr_views(int size, normalize norm = imagenet_normalize(), float strength = 1.0f,
                                              float blur_p = 0.5f) {
  view_settings s;
  s.size = size;
  s.jitter = color_jitter{0.8f * strength, 0.8f * strength, 0.8f * strength, 0.2f * strength};
  s.blur_p = blur_p;
  s.norm = std::move(norm);
  return {2, make_view(s)};
}

/// MoCo v2 (Chen et al. 2020): two views, crop (0.2, 1), jitter (0.4, 0.4, 0.4, 0.1), blur p 0.5.
inline multi_view<standard_view> mocov2_views(int size, normalize norm = imagenet_normalize()) {
  view_settings s;
  s.size = size;
  s.scale_lo = 0.2f;
  s.norm = std::move(norm);
  return {2, make_view(s)};
}

/// BYOL (Grill et al. 2020): asymmetric views, blur p 1.0 / 0.1, solarize p 0 / 0.2.
inline asymmetric_views<standard_view, standard_view> byol_views(int size, normalize norm = imagenet_normalize()) {
  view_settings s;
  s.size = size;
  s.jitter = color_jitter{0.4f, 0.4f, 0.2f, 0.1f};
  s.norm = std::move(norm);
  s.blur_p = 1.0f;
  standard_view first = make_view(s);
  s.blur_p = 0.1f;
  s.solarize_p = 0.2f;
  return asymmetric_views<standard_view, standard_view>(first, make_view(s));
}

using dino_policy = multi_crop<asymmetric_views<standard_view, standard_view>, standard_view>;

/// DINO (Caron et al. 2021): 2 global crops (scale (0.4, 1), blur 1.0 / 0.1 + solarize 0.2) and
/// n_local local crops (scale (0.05, 0.4), blur 0.5). The papers use 224 / 96 px; 28 / 12 px for Fashion-MNIST.
inline dino_policy dino_views(int global_size, int local_size, int n_local, normalize norm = imagenet_normalize()) {
  view_settings s;
  s.size = global_size;
  s.scale_lo = 0.4f;
  s.jitter = color_jitter{0.4f, 0.4f, 0.2f, 0.1f};
  s.norm = std::move(norm);
  s.blur_p = 1.0f;
  standard_view g1 = make_view(s);
  s.blur_p = 0.1f;
  s.solarize_p = 0.2f;
  standard_view g2 = make_view(s);
  s.size = local_size;
  s.scale_lo = 0.05f;
  s.scale_hi = 0.4f;
  s.blur_p = 0.5f;
  s.solarize_p = 0.0f;
  return dino_policy(asymmetric_views<standard_view, standard_view>(g1, g2), 2, make_view(s), n_local);
}

using swav_policy = multi_crop<standard_view, standard_view>;

/// SwAV (Caron et al. 2020, the official multi-crop): n_large crops of `large_size` with scale
/// (split_scale, 1) and n_small crops of `small_size` with scale (0.05, split_scale); SimCLR's colour
/// distortion of strength 1 (jitter (0.8, 0.8, 0.8, 0.2) p 0.8, grey p 0.2), blur p 0.5, flip.
/// The paper's 2 x 224 + 6 x 96 px with split 0.14; e.g. 28 / 12 px for Fashion-MNIST.
inline swav_policy swav_views(int large_size, int small_size, int n_small, normalize norm = imagenet_normalize(),
                              int n_large = 2, float split_scale = 0.14f) {
  check<value_error>(split_scale > 0.05f && split_scale <= 1.0f,
                     "swav_views: expected a split scale in (0.05, 1] between small and large crops, got ", split_scale);
  view_settings s;
  s.size = large_size;
  s.scale_lo = split_scale;
  s.jitter = color_jitter{0.8f, 0.8f, 0.8f, 0.2f};
  s.norm = std::move(norm);
  standard_view large = make_view(s);
  s.size = small_size;
  s.scale_lo = 0.05f;
  s.scale_hi = split_scale;
  return swav_policy(large, n_large, make_view(s), n_small);
}

using mae_view = compose<random_resized_crop, horizontal_flip, normalize>;

/// MAE (He et al. 2022): one view, crop (0.2, 1) bicubic, flip, no colour augmentation.
inline multi_view<mae_view> mae_views(int size, normalize norm = imagenet_normalize(), float scale_lo = 0.2f) {
  random_resized_crop crop;
  crop.size_h = crop.size_w = size;
  crop.scale_lo = scale_lo;
  crop.mode = interpolation::bicubic;
  return {1, mae_view(crop, horizontal_flip{0.5f}, std::move(norm))};
}

using fashion_mnist_simclr_view = compose<affine_resized_crop, horizontal_flip, random_apply<brightness_contrast>, normalize>;

/// WORKLOADS.md Q3, exactly: affine-grid crop to 28x28 with scale (0.3, 1), flip p 0.5, with
/// p 0.8 brightness then contrast factors U(0.6, 1.4) and one clamp, normalise (x - 0.2860) / 0.3530.
inline multi_view<fashion_mnist_simclr_view> fashion_mnist_simclr(int size = 28) {
  affine_resized_crop crop;
  crop.size_h = crop.size_w = size;
  crop.scale_lo = 0.3f;
  crop.scale_hi = 1.0f;
  return {2, fashion_mnist_simclr_view(crop, horizontal_flip{0.5f}, random_apply{0.8f, brightness_contrast{}},
                                       fashion_mnist_normalize())};
}

}  // namespace ssl::augment
