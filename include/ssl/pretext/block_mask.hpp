#pragma once
// Block-wise patch masks (BEiT, Bao et al. 2022; used by iBOT and DINOv2's masked-patch loss).
//
// block_mask(gh, gw, target, gen): hides about `target` patches of a gh x gw grid as a union of
// rectangles. Repeatedly: draw an area a ~ U(min_patches, min(target - hidden, max_patches)) and an
// aspect r = exp(U(log min_aspect, log max_aspect)); h = round(sqrt(a r)), w = round(sqrt(a / r));
// if h < gh and w < gw, place the h x w block at a uniform position and hide it when it adds
// between 1 and (target - hidden) new patches (a room below min_patches draws a in (room, min_patches)). Up to 10 tries per block; stop when `target` is
// reached or a block can add nothing. The count may stay below `target` (blocks cannot split).
//
// ibot_masks(N, gh, gw, options, gen): DINOv2's collate. n = int(N probability) samples are
// masked; sample i of them targets int(L U(r_i, r_{i+1})) patches with r = linspace(ratio_min,
// ratio_max, n + 1) (so the ratios spread over the range); the rest hide nothing; the N masks are
// then shuffled. Defaults: probability 0.5, ratios (0.1, 0.5), blocks of at most L / 2 patches,
// aspect in (0.3, 1/0.3), at least 4 patches a block (DINOv2's MaskingGenerator settings).
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../nn/patch_embed.hpp"

namespace ssl {

struct block_mask_options {
  int64_t min_patches = 4;       // smallest block area drawn
  int64_t max_patches = -1;      // largest block area; -1: half the grid (DINOv2)
  float min_aspect = 0.3f;       // aspect ratios drawn log-uniformly in (min_aspect, 1 / min_aspect)
};

struct ibot_mask_options {
  float probability = 0.5f;  // fraction of the samples that are masked at all
  float ratio_min = 0.1f;    // masked fraction of a masked sample's patches, spread over
  float ratio_max = 0.5f;    //   [ratio_min, ratio_max] across the masked samples
  block_mask_options blocks{};
};

namespace pretext_detail {
inline void check_block_options(const block_mask_options& o) {
  check<value_error>(o.min_patches >= 1 && (o.max_patches == -1 || o.max_patches >= 1),
                     "block_mask: expected min_patches >= 1 and max_patches >= 1 (or -1), got ", o.min_patches, ", ",
                     o.max_patches);
  check<value_error>(o.min_aspect > 0.0f && o.min_aspect <= 1.0f, "block_mask: expected min_aspect in (0, 1], got ",
                     o.min_aspect);
}
/// One block of at most `room` new patches; returns how many patches it hid (0: none fitted).
inline int64_t add_block(std::vector<uint8_t>& m, int64_t gh, int64_t gw, int64_t room, int64_t max_area,
                         const block_mask_options& o, rng& gen) {
  const float log_lo = std::log(o.min_aspect), log_hi = -std::log(o.min_aspect);
  const float area_hi = float(std::min(room, max_area));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const float area = gen.uniform(float(o.min_patches), area_hi);  // area_hi < min_patches: drawn in (area_hi, min)
    const float aspect = std::exp(gen.uniform(log_lo, log_hi));
    const int64_t h = int64_t(std::lround(std::sqrt(area * aspect)));
    const int64_t w = int64_t(std::lround(std::sqrt(area / aspect)));
    if (h < 1 || w < 1 || h >= gh || w >= gw) continue;
    const int64_t top = int64_t(gen.below(uint32_t(gh - h + 1)));
    const int64_t left = int64_t(gen.below(uint32_t(gw - w + 1)));
    int64_t fresh = 0;
    for (int64_t i = top; i < top + h; ++i)
      for (int64_t j = left; j < left + w; ++j) fresh += m[size_t(i * gw + j)] == 0;
    if (fresh == 0 || fresh > room) continue;
    for (int64_t i = top; i < top + h; ++i)
      for (int64_t j = left; j < left + w; ++j) m[size_t(i * gw + j)] = 1;
    return fresh;
  }
  return 0;
}
}  // namespace pretext_detail

/// A gh x gw grid (raster order) with about `target` patches hidden in blocks (1 = hidden).
inline std::vector<uint8_t> block_mask(int64_t gh, int64_t gw, int64_t target, rng& gen,
                                       const block_mask_options& o = {}) {
  pretext_detail::check_block_options(o);
  check<value_error>(gh >= 1 && gw >= 1, "block_mask: expected a grid of at least 1 x 1, got ", gh, " x ", gw);
  check<value_error>(target >= 0 && target <= gh * gw, "block_mask: expected 0 <= target <= ", gh * gw,
                     " patches, got ", target);
  const int64_t max_area = o.max_patches == -1 ? std::max<int64_t>(1, gh * gw / 2) : o.max_patches;
  std::vector<uint8_t> m(size_t(gh * gw), 0);
  int64_t hidden = 0;
  while (hidden < target) {
    const int64_t added = pretext_detail::add_block(m, gh, gw, target - hidden, max_area, o, gen);
    if (added == 0) break;
    hidden += added;
  }
  return m;
}

/// DINOv2's masks for N samples of a gh x gw grid. Sample n's mask is a pure function of gen and n
/// (its target drawn from gen.fork(n), its blocks from gen.fork(n).fork(1)); the shuffle draws from gen.fork(N).
inline patch_mask ibot_masks(int64_t N, int64_t gh, int64_t gw, const ibot_mask_options& o, const rng& gen) {
  check<value_error>(N >= 1, "ibot_masks: expected at least 1 sample, got ", N);
  check<value_error>(o.probability >= 0.0f && o.probability <= 1.0f,
                     "ibot_masks: expected a mask probability in [0, 1], got ", o.probability);
  check<value_error>(o.ratio_min >= 0.0f && o.ratio_min <= o.ratio_max && o.ratio_max <= 1.0f,
                     "ibot_masks: expected 0 <= ratio_min <= ratio_max <= 1, got ", o.ratio_min, ", ", o.ratio_max);
  const int64_t L = gh * gw;
  patch_mask pm{.batch = N, .tokens = L, .hidden = std::vector<uint8_t>(size_t(N * L), 0)};
  const int64_t masked = int64_t(double(N) * double(o.probability));
  std::vector<std::vector<uint8_t>> masks(size_t(N), std::vector<uint8_t>(size_t(L), 0));
  for (int64_t i = 0; i < masked; ++i) {
    rng g = gen.fork(uint64_t(i));
    const float lo = o.ratio_min + (o.ratio_max - o.ratio_min) * float(i) / float(masked);
    const float hi = o.ratio_min + (o.ratio_max - o.ratio_min) * float(i + 1) / float(masked);
    const int64_t target = int64_t(double(L) * double(g.uniform(lo, hi)));
    rng blocks = g.fork(1);
    masks[size_t(i)] = block_mask(gh, gw, target, blocks, o.blocks);
  }
  rng shuffle = gen.fork(uint64_t(N));
  for (int64_t i = N - 1; i > 0; --i) std::swap(masks[size_t(i)], masks[shuffle.below(uint32_t(i + 1))]);
  for (int64_t n = 0; n < N; ++n) std::copy(masks[size_t(n)].begin(), masks[size_t(n)].end(), pm.hidden.begin() + n * L);
  return pm;
}

}  // namespace ssl
