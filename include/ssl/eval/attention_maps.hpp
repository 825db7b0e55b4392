#pragma once
// DINO attention maps (Caron et al. 2021, Fig. 1 and visualize_attention.py of the official code).
//
//   cls_attention_maps(vit, x)     the last block's [CLS] query attention over the patch tokens,
//                                  per head, on the patch grid: (N, heads, gh, gw)
//   upsample_maps(maps, h, w)      to the image size, nearest or bilinear (align_corners = False,
//                                  as F.interpolate): (N, heads, h, w)
//   keep_attention_mass(maps, t)   1 on the smallest set of largest entries holding a share >= t of
//                                  each map's mass (DINO: sort ascending, cumsum / sum > 1 - t)
//   attention_figure(images, maps) one row per image: the image, each head's heat-map overlay,
//                                  each head's thresholded map; write_attention_png writes it.
// The encoder is any ViT-like type with cls_attention(x) -> (N, H, 1 + gh gw) (ssl::vit).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "../core/parallel.hpp"
#include "../io/image.hpp"
#include "../io/image_grid.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::eval {

enum class upsample_mode { nearest, bilinear };

/// The [CLS] attention of the last block over the patches, per head: x (N, C, H, W) -> (N, heads, gh, gw).
template <class E>
tensor<cpu> cls_attention_maps(const E& vit, const tensor<cpu>& x) {
  static_assert(requires(const E& e) {
    { e.cls_attention(x) } -> std::same_as<tensor<cpu>>;
    e.patch_size();
  }, "cls_attention_maps: E must be a ViT-like encoder with cls_attention(x) and patch_size() (e.g. ssl::vit)");
  expect_rank(x, 4, "cls_attention_maps images");
  const int64_t p = vit.patch_size(), gh = x.dim(2) / p, gw = x.dim(3) / p;
  const tensor<cpu> a = vit.cls_attention(x);  // (N, H, 1 + gh gw)
  check<shape_error>(a.rank() == 3 && a.dim(2) == 1 + gh * gw, "cls_attention_maps: expected (N, heads, ", 1 + gh * gw,
                     ") attention from the encoder, got ", a.shape());
  const int64_t N = a.dim(0), H = a.dim(1), T = a.dim(2);
  tensor<cpu> out(shape{N, H, gh, gw});
  for (int64_t nh = 0; nh < N * H; ++nh) std::copy_n(a.data() + nh * T + 1, T - 1, out.data() + nh * (T - 1));
  return out;
}

/// maps (N, H, gh, gw) -> (N, H, oh, ow).
inline tensor<cpu> upsample_maps(const tensor<cpu>& maps, int64_t oh, int64_t ow,
                                 upsample_mode mode = upsample_mode::nearest) {
  expect_rank(maps, 4, "upsample_maps maps");
  check<value_error>(oh >= 1 && ow >= 1, "upsample_maps: expected an output size >= 1x1, got ", oh, "x", ow);
  const int64_t NH = maps.dim(0) * maps.dim(1), ih = maps.dim(2), iw = maps.dim(3);
  tensor<cpu> out(shape{maps.dim(0), maps.dim(1), oh, ow});
  // source coordinate of an output pixel (align_corners = False)
  auto src = [](int64_t d, int64_t in, int64_t o) { return std::max(0.0, (double(d) + 0.5) * double(in) / double(o) - 0.5); };
  parallel_for(0, NH, [&](int64_t k) {
    const float* m = maps.data() + k * ih * iw;
    float* o = out.data() + k * oh * ow;
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        if (mode == upsample_mode::nearest) {
          o[y * ow + x] = m[std::min(ih - 1, y * ih / oh) * iw + std::min(iw - 1, x * iw / ow)];
          continue;
        }
        const double sy = src(y, ih, oh), sx = src(x, iw, ow);
        const int64_t y0 = std::min(int64_t(sy), ih - 1), x0 = std::min(int64_t(sx), iw - 1);
        const int64_t y1 = std::min(y0 + 1, ih - 1), x1 = std::min(x0 + 1, iw - 1);
        const double fy = sy - double(y0), fx = sx - double(x0);
        o[y * ow + x] = float((1 - fy) * ((1 - fx) * m[y0 * iw + x0] + fx * m[y0 * iw + x1]) +
                              fy * ((1 - fx) * m[y1 * iw + x0] + fx * m[y1 * iw + x1]));
      }
  });
  return out;
}

/// Binary masks (shape of maps): per map (last two dims), 1 on the largest entries whose mass
/// first reaches a share `keep` of the total (DINO's threshold, 0.6 in the paper's figures).
inline tensor<cpu> keep_attention_mass(const tensor<cpu>& maps, float keep = 0.6f) {
  check<shape_error>(maps.rank() >= 2, "keep_attention_mass: expected maps (..., h, w), got ", maps.shape());
  check<value_error>(keep > 0.0f && keep <= 1.0f, "keep_attention_mass: expected a share in (0, 1], got ", keep);
  const int64_t P = maps.dim(-1) * maps.dim(-2), R = P ? maps.numel() / P : 0;
  tensor<cpu> out(maps.shape(), 0.0f);
  parallel_for(0, R, [&](int64_t r) {
    const float* m = maps.data() + r * P;
    std::vector<int64_t> order(static_cast<size_t>(P));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return m[a] < m[b]; });
    double total = 0;
    for (int64_t i = 0; i < P; ++i) {
      check<value_error>(m[i] >= 0.0f && std::isfinite(m[i]), "keep_attention_mass: expected non-negative finite "
                         "attention, got ", m[i]);
      total += m[i];
    }
    if (total <= 0) return;
    double cum = 0;
    for (int64_t i = 0; i < P; ++i) {
      cum += m[order[size_t(i)]] / total;
      if (cum > 1.0 - double(keep)) out[r * P + order[size_t(i)]] = 1.0f;
    }
  });
  return out;
}

struct attention_figure_options {
  int64_t scale = 4;               // image magnification (nearest)
  upsample_mode mode = upsample_mode::bilinear;
  float keep = 0.6f;               // attention mass kept by the thresholded maps
  float alpha = 0.6f;              // heat-map opacity over the image
  int padding = 2;
};

namespace detail {
// "hot" colour map of a in [0, 1]: black -> red -> yellow -> white.
inline void hot(float a, float& r, float& g, float& b) {
  r = std::clamp(3.0f * a, 0.0f, 1.0f);
  g = std::clamp(3.0f * a - 1.0f, 0.0f, 1.0f);
  b = std::clamp(3.0f * a - 2.0f, 0.0f, 1.0f);
}
// The image (C, H, W) in [0, 1] magnified by s (nearest) as a grey level per pixel (channel mean).
inline std::vector<float> grey_scaled(const tensor<cpu>& img, int64_t s) {
  const int64_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  std::vector<float> g(size_t(H * s * W * s));
  for (int64_t y = 0; y < H * s; ++y)
    for (int64_t x = 0; x < W * s; ++x) {
      float v = 0;
      for (int64_t c = 0; c < C; ++c) v += img[(c * H + y / s) * W + x / s];
      g[size_t(y * W * s + x)] = std::clamp(v / float(C), 0.0f, 1.0f);
    }
  return g;
}
}  // namespace detail

/// images (N, C, H, W) in [0, 1] and maps (N, heads, gh, gw) -> one RGB grid image: row n holds
/// image n, then each head's heat-map overlay (map min-max scaled to [0, 1]), then each head's thresholded map
/// (the image inside the kept region, darkened outside, region tinted red).
inline tensor<cpu> attention_figure(const tensor<cpu>& images, const tensor<cpu>& maps,
                                    const attention_figure_options& o = {}) {
  expect_rank(images, 4, "attention_figure images");
  expect_rank(maps, 4, "attention_figure maps");
  check<shape_error>(maps.dim(0) == images.dim(0), "attention_figure: ", images.dim(0), " images but maps for ",
                     maps.dim(0));
  check<value_error>(o.scale >= 1, "attention_figure: scale must be >= 1, got ", o.scale);
  const int64_t N = images.dim(0), C = images.dim(1), H = images.dim(2), W = images.dim(3), heads = maps.dim(1);
  const int64_t sh = H * o.scale, sw = W * o.scale, P = sh * sw;
  const tensor<cpu> up = upsample_maps(maps, sh, sw, o.mode);
  const tensor<cpu> kept = upsample_maps(keep_attention_mass(maps, o.keep), sh, sw, upsample_mode::nearest);
  std::vector<tensor<cpu>> cells;
  for (int64_t n = 0; n < N; ++n) {
    tensor<cpu> img(shape{C, H, W});
    std::copy_n(images.data() + n * C * H * W, C * H * W, img.data());
    const std::vector<float> grey = detail::grey_scaled(img, o.scale);
    tensor<cpu> base(shape{3, sh, sw});
    for (int64_t c = 0; c < 3; ++c) std::copy(grey.begin(), grey.end(), base.data() + c * P);
    cells.push_back(base);
    for (int64_t h = 0; h < heads; ++h) {
      const float* a = up.data() + (n * heads + h) * P;
      const auto [lo_it, hi_it] = std::minmax_element(a, a + P);
      const float lo = *lo_it, span = std::max(*hi_it - lo, 1e-12f);
      tensor<cpu> ov(shape{3, sh, sw});
      for (int64_t i = 0; i < P; ++i) {
        float r, g, b;
        detail::hot((a[i] - lo) / span, r, g, b);
        const float gv = grey[size_t(i)] * (1.0f - o.alpha);
        ov[i] = gv + o.alpha * r;
        ov[P + i] = gv + o.alpha * g;
        ov[2 * P + i] = gv + o.alpha * b;
      }
      cells.push_back(std::move(ov));
    }
    for (int64_t h = 0; h < heads; ++h) {
      const float* k = kept.data() + (n * heads + h) * P;
      tensor<cpu> th(shape{3, sh, sw});
      for (int64_t i = 0; i < P; ++i) {
        const float gv = grey[size_t(i)];
        th[i] = k[i] > 0.5f ? 0.5f + 0.5f * gv : 0.25f * gv;
        th[P + i] = k[i] > 0.5f ? 0.6f * gv : 0.25f * gv;
        th[2 * P + i] = k[i] > 0.5f ? 0.6f * gv : 0.25f * gv;
      }
      cells.push_back(std::move(th));
    }
  }
  return io::make_grid(cells, int(1 + 2 * heads), o.padding, 1.0f);
}

/// Writes attention_figure(images, maps) as a PNG file.
inline void write_attention_png(const std::string& path, const tensor<cpu>& images, const tensor<cpu>& maps,
                                const attention_figure_options& o = {}) {
  io::write_png(path, attention_figure(images, maps, o));
}

}  // namespace ssl::eval
