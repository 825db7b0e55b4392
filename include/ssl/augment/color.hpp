#pragma once
// Colour adjustments with explicit factors, as torchvision.transforms.functional on float tensors.
// Each returns a new (C, H, W) image clamped to [0, 1]; blend(a, b, f) = clamp(f·a + (1-f)·b).
//   brightness: blend(img, 0, f)                     any C
//   contrast:   blend(img, mean(grey(img)), f)        grey for C = 3, plain mean otherwise
//   saturation: blend(img, grey(img), f)              C = 3 (other C unchanged)
//   hue:        h -> (h + f) mod 1 in HSV space, f in [-0.5, 0.5]; C = 3 (other C unchanged)
// grey = 0.2989 R + 0.587 G + 0.114 B (ITU-R 601-2 luma, as torchvision).
#include <cmath>

#include "augmentation.hpp"

namespace ssl::augment {

inline constexpr float luma_r = 0.2989f, luma_g = 0.587f, luma_b = 0.114f;

inline tensor<cpu> adjust_brightness(const tensor<cpu>& img, float factor) {
  detail::check_image(img, "adjust_brightness");
  check<value_error>(factor >= 0, "adjust_brightness: expected a non-negative factor, got ", factor);
  tensor<cpu> out(img.shape());
  const float* src = img.data();
  float* dst = out.data();
  for (int64_t i = 0, n = img.numel(); i < n; ++i) dst[i] = detail::clamp01(factor * src[i]);
  return out;
}

/// Mean of the image's luma (C = 3) or of all its values (other C), accumulated in double.
inline float mean_intensity(const tensor<cpu>& img) {
  const int64_t C = img.dim(0), plane = img.dim(1) * img.dim(2);
  if (C == 3) {
    const float* r = img.data();
    return float(detail::weighted_sum(r, r + plane, r + 2 * plane, luma_r, luma_g, luma_b, plane) / double(plane));
  }
  return float(detail::weighted_sum(img.data(), nullptr, nullptr, 1.0f, 0.0f, 0.0f, img.numel()) / double(img.numel()));
}

inline tensor<cpu> adjust_contrast(const tensor<cpu>& img, float factor) {
  detail::check_image(img, "adjust_contrast");
  check<value_error>(factor >= 0, "adjust_contrast: expected a non-negative factor, got ", factor);
  const float bias = (1 - factor) * mean_intensity(img);
  tensor<cpu> out(img.shape());
  const float* src = img.data();
  float* dst = out.data();
  for (int64_t i = 0, n = img.numel(); i < n; ++i) dst[i] = detail::clamp01(factor * src[i] + bias);
  return out;
}

inline tensor<cpu> adjust_saturation(const tensor<cpu>& img, float factor) {
  detail::check_image(img, "adjust_saturation");
  check<value_error>(factor >= 0, "adjust_saturation: expected a non-negative factor, got ", factor);
  if (img.dim(0) != 3) return img;
  const int64_t plane = img.dim(1) * img.dim(2);
  tensor<cpu> out(img.shape());
  float* o = out.data();
  const float *r = img.data(), *g = r + plane, *b = g + plane;
  for (int64_t i = 0; i < plane; ++i) {
    const float grey = (1 - factor) * (luma_r * r[i] + luma_g * g[i] + luma_b * b[i]);
    o[i] = detail::clamp01(factor * r[i] + grey);
    o[plane + i] = detail::clamp01(factor * g[i] + grey);
    o[2 * plane + i] = detail::clamp01(factor * b[i] + grey);
  }
  return out;
}

inline tensor<cpu> adjust_hue(const tensor<cpu>& img, float factor) {
  detail::check_image(img, "adjust_hue");
  check<value_error>(factor >= -0.5f && factor <= 0.5f, "adjust_hue: expected a factor in [-0.5, 0.5], got ", factor);
  if (img.dim(0) != 3) return img;
  const int64_t plane = img.dim(1) * img.dim(2);
  tensor<cpu> out(img.shape());
  float* o = out.data();
  const float *r = img.data(), *g = r + plane, *b = g + plane;
  // Branch-free per pixel so that the loop vectorises (GCC's cost model needs the simd hint).
#if defined(_OPENMP)
#pragma omp simd
#endif
  for (int64_t i = 0; i < plane; ++i) {
    // RGB -> HSV (torchvision's _rgb2hsv)
    const float R = r[i], G = g[i], B = b[i];
    const float mrg = R > G ? R : G, nrg = R < G ? R : G;
    const float maxc = mrg > B ? mrg : B, minc = nrg < B ? nrg : B;
    const bool flat = maxc == minc;
    const float cr = maxc - minc;
    const float s = cr / (flat ? 1.0f : maxc);
    const float div = flat ? 1.0f : cr;
    const float rc = (maxc - R) / div, gc = (maxc - G) / div, bc = (maxc - B) / div;
    float h = maxc == R ? bc - gc : (maxc == G ? 2.0f + rc - bc : 4.0f + gc - rc);
    h = h / 6.0f + 1.0f;  // in [5/6, 2): fmod(h, 1) is one conditional subtraction
    h = h >= 1.0f ? h - 1.0f : h;
    // hue shift, Python-style modulo into [0, 1)
    h += factor;
    h = h < 0.0f ? h + 1.0f : (h >= 1.0f ? h - 1.0f : h);
    // HSV -> RGB (torchvision's _hsv2rgb)
    const float v = maxc;
    const float h6 = h * 6.0f;
    const float fl = float(int(h6));  // floor, as h6 >= 0 (std::floor would block vectorisation)
    const float f = h6 - fl;
    const float k = fl >= 6.0f ? fl - 6.0f : fl;  // sector 0..5
    const float p = detail::clamp01(v * (1 - s)), q = detail::clamp01(v * (1 - s * f)),
                t = detail::clamp01(v * (1 - s * (1 - f)));
    // sector:   0  1  2  3  4  5
    //   R:      v  q  p  p  t  v
    //   G:      t  v  v  q  p  p
    //   B:      p  p  t  v  v  q
    o[i] = (k == 0.0f || k == 5.0f) ? v : (k == 1.0f ? q : (k == 4.0f ? t : p));
    o[plane + i] = k == 0.0f ? t : ((k == 1.0f || k == 2.0f) ? v : (k == 3.0f ? q : p));
    o[2 * plane + i] = (k == 3.0f || k == 4.0f) ? v : (k == 2.0f ? t : (k == 5.0f ? q : p));
  }
  return out;
}

/// Luma of an RGB image, repeated over `channels` output channels; other C pass through unchanged.
inline tensor<cpu> to_grayscale(const tensor<cpu>& img, int channels = 3) {
  detail::check_image(img, "to_grayscale");
  if (img.dim(0) != 3) return img;
  const int64_t plane = img.dim(1) * img.dim(2);
  tensor<cpu> out(shape{channels, img.dim(1), img.dim(2)});
  const float *r = img.data(), *g = r + plane, *b = g + plane;
  float* o = out.data();
  for (int64_t i = 0; i < plane; ++i) o[i] = luma_r * r[i] + luma_g * g[i] + luma_b * b[i];
  for (int c = 1; c < channels; ++c) std::copy(out.data(), out.data() + plane, out.data() + c * plane);
  return out;
}

}  // namespace ssl::augment
