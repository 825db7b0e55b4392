#pragma once
// Histograms of oriented gradients (Dalal & Triggs 2005), the regression targets of MaskFeat
// (Wei et al. 2022, "Masked Feature Prediction for Self-Supervised Visual Pre-Training").
//   images (N, C, H, W) -> targets (N, L, C k^2 bins),  L = (H / patch)(W / patch), k = patch / cell
// Per channel:
//   gx = I(y, x+1) - I(y, x-1),  gy = I(y+1, x) - I(y-1, x)     [-1, 0, 1] filters, reflect padding
//   m = sqrt(gx^2 + gy^2),  a = atan2(gy, gx) mod pi              unsigned orientation in [0, pi)
//   soft (linear) binning between bin centres (b + 1/2) pi / bins: pos = a bins / pi - 1/2,
//   bin floor(pos) gets m (1 - frac), bin floor(pos) + 1 gets m frac (indices mod bins)
//   cell histogram = sum over its cell x cell pixels
// Per patch (the block): its k x k cells of every channel concatenated in (channel, cell row,
// cell col, bin) order, v <- v / sqrt(|v|^2 + eps^2) (L2 normalisation over the patch).
// Defaults: 4x4 cells, one cell per 4x4 patch, 9 bins: 49 x 9 targets for 28x28 Fashion-MNIST.
#include <cmath>
#include <numbers>
#include <vector>

#include "../core/parallel.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::pretext {

struct hog_options {
  int64_t cell = 4;   // cell side in pixels
  int64_t patch = 4;  // patch (block) side in pixels, a multiple of cell
  int bins = 9;       // orientation bins over [0, pi)
  float eps = 1e-6f;  // L2 normalisation: v / sqrt(|v|^2 + eps^2)
};

/// Length of one patch's HoG vector for `channels` input channels.
inline int64_t hog_dim(int64_t channels, const hog_options& o = {}) {
  const int64_t k = o.patch / o.cell;
  return channels * k * k * o.bins;
}

/// images (N, C, H, W) -> (N, L, hog_dim(C)), patches in raster order.
inline tensor<cpu> hog(const tensor<cpu>& images, const hog_options& o = {}) {
  check<value_error>(o.cell >= 1 && o.patch >= o.cell && o.patch % o.cell == 0 && o.bins >= 2 && o.eps >= 0.0f,
                     "hog: expected cell >= 1, patch a multiple of cell, bins >= 2, eps >= 0; got cell ", o.cell,
                     ", patch ", o.patch, ", bins ", o.bins, ", eps ", o.eps);
  check<shape_error>(images.rank() == 4 && images.dim(2) >= 2 && images.dim(3) >= 2 && images.dim(2) % o.patch == 0 &&
                         images.dim(3) % o.patch == 0,
                     "hog: expected images (N, C, H, W) with H, W >= 2 and multiples of the patch size ", o.patch,
                     ", got ", images.shape());
  const int64_t N = images.dim(0), C = images.dim(1), H = images.dim(2), W = images.dim(3);
  const int64_t k = o.patch / o.cell, ch = H / o.cell, cw = W / o.cell, gh = H / o.patch, gw = W / o.patch;
  const int64_t nb = o.bins, D = hog_dim(C, o);
  tensor<cpu> out(shape{N, gh * gw, D});
  const double bin_per_rad = double(nb) / std::numbers::pi;
  // reflect padding by one pixel: index -1 -> 1, n -> n - 2
  auto reflect = [](int64_t i, int64_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  parallel_for(0, N, [&](int64_t n) {
    std::vector<double> cells(size_t(C * ch * cw * nb), 0.0);  // (C, ch, cw, bins)
    for (int64_t c = 0; c < C; ++c) {
      const float* img = images.data() + (n * C + c) * H * W;
      double* hc = cells.data() + c * ch * cw * nb;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const double gx = double(img[y * W + reflect(x + 1, W)]) - img[y * W + reflect(x - 1, W)];
          const double gy = double(img[reflect(y + 1, H) * W + x]) - img[reflect(y - 1, H) * W + x];
          const double m = std::sqrt(gx * gx + gy * gy);
          if (m == 0.0) continue;
          double a = std::atan2(gy, gx);
          if (a < 0) a += std::numbers::pi;
          if (a >= std::numbers::pi) a -= std::numbers::pi;
          const double pos = a * bin_per_rad - 0.5;
          const double lo = std::floor(pos), frac = pos - lo;
          const int64_t b0 = ((int64_t(lo) % nb) + nb) % nb, b1 = (b0 + 1) % nb;
          double* h = hc + ((y / o.cell) * cw + x / o.cell) * nb;
          h[b0] += m * (1.0 - frac);
          h[b1] += m * frac;
        }
    }
    for (int64_t py = 0; py < gh; ++py)
      for (int64_t px = 0; px < gw; ++px) {
        float* v = out.data() + (n * gh * gw + py * gw + px) * D;
        double ss = 0;
        int64_t j = 0;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t cy = 0; cy < k; ++cy)
            for (int64_t cx = 0; cx < k; ++cx) {
              const double* h = cells.data() + ((c * ch + py * k + cy) * cw + px * k + cx) * nb;
              for (int64_t b = 0; b < nb; ++b, ++j) {
                v[j] = float(h[b]);
                ss += h[b] * h[b];
              }
            }
        const float inv = float(1.0 / std::sqrt(ss + double(o.eps) * o.eps));
        if (ss == 0.0) continue;  // flat patch: all zeros
        for (int64_t i = 0; i < D; ++i) v[i] *= inv;
      }
  });
  return out;
}

}  // namespace ssl::pretext
