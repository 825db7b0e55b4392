#pragma once
// SimMIM's patch masks (Xie et al. 2022, "SimMIM: a Simple Framework for Masked Image Modeling",
// the official MaskGenerator): random masking at a coarser "mask patch" than the model's patch.
//
// unit_mask(N, gh, gw, options, gen): the gh x gw patch grid is tiled by units of u x u patches,
// Uh x Uw = ceil(gh / u) x ceil(gw / u) of them (the last row / column of units is cut at the grid's
// edge when u does not divide it; the official generator requires it to); per sample a uniform
// random subset of ceil(U ratio) of the U = Uh Uw units is hidden, and with a unit every patch of
// it. Official settings: mask patch 32 px at model patch 16 (ViT-B: u = 2) or 4 (Swin: u = 8),
// ratio 0.6. Sample n draws from gen.fork(first_sample + n) (uniform noise, argsort; thread-count
// free), so a data-parallel replica's slice of a global batch draws what the global batch would.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../nn/patch_embed.hpp"

namespace ssl {

struct unit_mask_options {
  int64_t unit = 2;   // mask unit side in patches (SimMIM's mask_patch_size / model_patch_size)
  float ratio = 0.6f; // fraction of the units hidden (rounded up)
};

/// Units of a gh x gw grid along one side: ceil(g / u).
inline int64_t unit_count(int64_t g, int64_t u) { return (g + u - 1) / u; }

/// Hidden units per sample: ceil(U ratio), computed in double from the float ratio (a ratio such
/// as 0.6f is 0.6000000238, so U ratio is taken 1e-6 below to keep exact products, e.g.
/// 5 x 0.6 = 3, as the official float64 arithmetic has them).
inline int64_t hidden_unit_count(int64_t units, float ratio) {
  return std::clamp<int64_t>(int64_t(std::ceil(double(units) * double(ratio) - 1e-6)), 1, units);
}

/// The masks of N samples: patch_mask.hidden[n L + l] = 1 for the patches l (raster order) of
/// sample n's hidden units. gh, gw >= 1, unit >= 1, ratio in (0, 1).
inline patch_mask unit_mask(int64_t batch, int64_t gh, int64_t gw, const unit_mask_options& o, const rng& gen,
                            int64_t first_sample = 0) {
  check<value_error>(o.ratio > 0.0f && o.ratio < 1.0f, "unit_mask: expected a mask ratio in (0, 1), got ", o.ratio);
  check<value_error>(o.unit >= 1, "unit_mask: expected a unit of >= 1 patch, got ", o.unit);
  check<value_error>(batch >= 1 && gh >= 1 && gw >= 1, "unit_mask: expected batch, grid sides >= 1, got ", batch, ", ",
                     gh, " x ", gw);
  const int64_t uh = unit_count(gh, o.unit), uw = unit_count(gw, o.unit), U = uh * uw, L = gh * gw;
  const int64_t hidden = hidden_unit_count(U, o.ratio);
  patch_mask m{.batch = batch, .tokens = L, .hidden = std::vector<uint8_t>(size_t(batch * L), 0)};
  std::vector<float> noise(static_cast<size_t>(U));
  std::vector<int32_t> order(static_cast<size_t>(U));
  for (int64_t n = 0; n < batch; ++n) {
    rng g = gen.fork(uint64_t(first_sample + n));
    detail::noise_argsort(g, noise, order);
    uint8_t* h = m.hidden.data() + n * L;
    for (int64_t k = 0; k < hidden; ++k) {
      const int64_t ur = order[size_t(k)] / uw, uc = order[size_t(k)] % uw;
      for (int64_t r = ur * o.unit; r < std::min(gh, (ur + 1) * o.unit); ++r)
        for (int64_t c = uc * o.unit; c < std::min(gw, (uc + 1) * o.unit); ++c) h[r * gw + c] = 1;
    }
  }
  return m;
}

}  // namespace ssl
