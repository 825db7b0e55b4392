#pragma once
// Resampling kernels shared by the geometric transforms.
//
//  * resize_crop: crop a box of the image and resize it, separably (rows then columns), with
//    PyTorch's interpolate(align_corners=False) rules: bilinear (2 taps, source index clamped
//    at 0) or bicubic (4 taps, Keys a = -0.75, border indices clamped). No antialiasing, as in
//    torchvision 0.14's tensor path.
//  * sample_affine: out(x, y) = img(m · (x, y, 1)) in pixel-centre coordinates, bilinear or
//    nearest, zero outside the image: grid_sample(padding_mode="zeros", align_corners=False).
#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "augmentation.hpp"

namespace ssl::augment {

/// Interpolation used by geometric transforms.
enum class interpolation { nearest, bilinear, bicubic };

namespace detail {

/// For every output index o: `taps` input indices (absolute, already clamped) and weights.
struct axis_taps {
  int taps = 0;
  std::vector<int32_t> index;  // (out, taps)
  std::vector<float> weight;   // (out, taps)
};

// Keys cubic convolution with a = -0.75 (PyTorch's upsample_bicubic2d).
inline double cubic_near(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }       // |x| <= 1
inline double cubic_far(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }  // 1 < |x| < 2

/// Taps mapping out_size outputs onto the input segment [offset, offset + size) of an axis
/// whose valid indices are [offset, offset + size) (a crop). align_corners=False.
inline axis_taps make_axis_taps(int offset, int size, int out_size, interpolation mode) {
  axis_taps t;
  const double scale = double(size) / double(out_size);
  if (mode == interpolation::bicubic) {
    t.taps = 4;
    t.index.resize(size_t(out_size) * 4);
    t.weight.resize(size_t(out_size) * 4);
    for (int o = 0; o < out_size; ++o) {
      const double real = scale * (o + 0.5) - 0.5;  // not clamped for cubic
      const double fl = std::floor(real);
      const double f = real - fl;
      const double w[4] = {cubic_far(f + 1, -0.75), cubic_near(f, -0.75), cubic_near(1 - f, -0.75),
                           cubic_far(2 - f, -0.75)};
      for (int k = 0; k < 4; ++k) {
        int i = int(fl) - 1 + k;
        i = i < 0 ? 0 : (i > size - 1 ? size - 1 : i);
        t.index[size_t(o) * 4 + k] = offset + i;
        t.weight[size_t(o) * 4 + k] = float(w[k]);
      }
    }
  } else if (mode == interpolation::bilinear) {
    t.taps = 2;
    t.index.resize(size_t(out_size) * 2);
    t.weight.resize(size_t(out_size) * 2);
    for (int o = 0; o < out_size; ++o) {
      double real = scale * (o + 0.5) - 0.5;
      if (real < 0) real = 0;
      const int i0 = int(real);
      const int i1 = i0 < size - 1 ? i0 + 1 : i0;
      const double l1 = real - i0;
      t.index[size_t(o) * 2] = offset + i0;
      t.index[size_t(o) * 2 + 1] = offset + i1;
      t.weight[size_t(o) * 2] = float(1 - l1);
      t.weight[size_t(o) * 2 + 1] = float(l1);
    }
  } else {  // nearest: PyTorch's legacy "nearest", floor(o * scale)
    t.taps = 1;
    t.index.resize(size_t(out_size));
    t.weight.assign(size_t(out_size), 1.0f);
    for (int o = 0; o < out_size; ++o) {
      int i = int(std::floor(o * scale));
      t.index[size_t(o)] = offset + (i > size - 1 ? size - 1 : i);
    }
  }
  return t;
}

}  // namespace detail

/// Crops rows [top, top + h) and columns [left, left + w) of img (C, H, W) and resizes the crop
/// to (C, out_h, out_w). The box must lie inside the image.
inline tensor<cpu> resize_crop(const tensor<cpu>& img, int top, int left, int h, int w, int out_h, int out_w,
                               interpolation mode) {
  detail::check_image(img, "resize_crop");
  const int C = int(img.dim(0)), H = int(img.dim(1)), W = int(img.dim(2));
  check<value_error>(h > 0 && w > 0 && top >= 0 && left >= 0 && top + h <= H && left + w <= W,
                     "resize_crop: expected a non-empty box inside the ", H, "x", W, " image, got top ", top, " left ",
                     left, " height ", h, " width ", w);
  check<value_error>(out_h > 0 && out_w > 0, "resize_crop: expected a positive output size, got ", out_h, "x", out_w);
  const detail::axis_taps tx = detail::make_axis_taps(left, w, out_w, mode);
  const detail::axis_taps ty = detail::make_axis_taps(top, h, out_h, mode);
  // Pass 1, along x: tmp (C, h, out_w) from rows top..top+h of the image.
  std::vector<float> tmp(size_t(C) * h * out_w);
  auto along_x = [&]<int T>(std::integral_constant<int, T>) {
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < h; ++y) {
        const float* src = img.data() + (int64_t(c) * H + top + y) * W;
        float* dst = tmp.data() + (size_t(c) * h + y) * out_w;
        const int32_t* ix = tx.index.data();
        const float* wx = tx.weight.data();
        for (int o = 0; o < out_w; ++o, ix += T, wx += T) {
          float acc = 0.0f;
          for (int k = 0; k < T; ++k) acc += wx[k] * src[ix[k]];
          dst[o] = acc;
        }
      }
  };
  if (tx.taps == 1) along_x(std::integral_constant<int, 1>{});
  else if (tx.taps == 2) along_x(std::integral_constant<int, 2>{});
  else along_x(std::integral_constant<int, 4>{});
  // Pass 2, along y: out (C, out_h, out_w), row-vector updates.
  tensor<cpu> out(shape{C, out_h, out_w});
  for (int c = 0; c < C; ++c)
    for (int o = 0; o < out_h; ++o) {
      float* dst = out.data() + (int64_t(c) * out_h + o) * out_w;
      for (int x = 0; x < out_w; ++x) dst[x] = 0.0f;
      for (int k = 0; k < ty.taps; ++k) {
        const float wk = ty.weight[size_t(o) * ty.taps + k];
        const float* src = tmp.data() + (size_t(c) * h + (ty.index[size_t(o) * ty.taps + k] - top)) * out_w;
        for (int x = 0; x < out_w; ++x) dst[x] += wk * src[x];
      }
    }
  return out;
}

/// A 2x3 affine map from output pixel coordinates (x, y, 1) to input pixel coordinates;
/// pixel (i, j) has its centre at (j, i).
using affine_map = std::array<double, 6>;

/// out(c, y, x) = img(c, m · (x, y, 1)), bilinear or nearest (round half to even), zero outside.
inline tensor<cpu> sample_affine(const tensor<cpu>& img, int out_h, int out_w, const affine_map& m,
                                 interpolation mode) {
  detail::check_image(img, "sample_affine");
  check<value_error>(mode != interpolation::bicubic, "sample_affine: expected nearest or bilinear interpolation, got bicubic");
  const int C = int(img.dim(0)), H = int(img.dim(1)), W = int(img.dim(2));
  tensor<cpu> out(shape{C, out_h, out_w});
  const int64_t plane_in = int64_t(H) * W, plane_out = int64_t(out_h) * out_w;
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x) {
      const double sx = m[0] * x + m[1] * y + m[2];
      const double sy = m[3] * x + m[4] * y + m[5];
      const int64_t o = int64_t(y) * out_w + x;
      if (mode == interpolation::nearest) {
        const int ix = int(std::nearbyint(sx)), iy = int(std::nearbyint(sy));
        const bool in = ix >= 0 && ix < W && iy >= 0 && iy < H;
        for (int c = 0; c < C; ++c) out.data()[c * plane_out + o] = in ? img.data()[c * plane_in + int64_t(iy) * W + ix] : 0.0f;
        continue;
      }
      const double fx = std::floor(sx), fy = std::floor(sy);
      const int x0 = int(fx), y0 = int(fy);
      const float ax = float(sx - fx), ay = float(sy - fy);
      const float w[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
      const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      int64_t off[4];
      float wk[4];
      for (int k = 0; k < 4; ++k) {
        const bool in = xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H;
        off[k] = in ? int64_t(ys[k]) * W + xs[k] : 0;
        wk[k] = in ? w[k] : 0.0f;
      }
      for (int c = 0; c < C; ++c) {
        const float* p = img.data() + c * plane_in;
        out.data()[c * plane_out + o] = wk[0] * p[off[0]] + wk[1] * p[off[1]] + wk[2] * p[off[2]] + wk[3] * p[off[3]];
      }
    }
  return out;
}

}  // namespace ssl::augment
