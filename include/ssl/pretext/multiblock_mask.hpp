#pragma once
// I-JEPA's multi-block masks (Assran et al. 2023, "Self-Supervised Learning from Images with a
// Joint-Embedding Predictive Architecture"; the official MaskCollator) on a gh x gw patch grid.
//
// Per batch (one draw for every sample, as the collator does):
//   target block size:  s ~ U(target_scale), a = exp(U(log target_aspect)), K = int(gh gw s),
//                       h = round(sqrt(K a)), w = round(sqrt(K / a)), shrunk until h < gh, w < gw
//   context block size: the same with context_scale and aspect 1
// Per sample:
//   M target blocks: h x w rectangles at uniform positions (they may overlap each other);
//   the context: one block at a uniform position, minus every target block (allow_overlap off).
//   A context with <= min_keep patches is redrawn; after 20 failed draws the last target stops
//   constraining it, then the next to last, ... (the official _constrain_mask schedule).
// Then every sample keeps the first K_c = min over the batch of its context patches, and each
// target block its first K_t = h w (raster order), so the batch stays rectangular.
//
// Deviation: block corners are drawn in [0, g - h] inclusive. The official code draws
// randint(0, g - h), which never places a block on the last row / column; at 7 x 7 patches that
// would pin the 6 x 6 context block to the top-left corner.
//
// Reproducible and data-parallel: sizes draw from gen.fork(0), sample n of the global batch from
// gen.fork(1 + n); K_c is the minimum over the whole global batch of world x batch samples, so
// replica r's masks are rows [r batch, (r + 1) batch) of what one process draws for the global batch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../nn/patch_embed.hpp"

namespace ssl {

struct multiblock_mask_options {
  int64_t targets = 4;                   // M target blocks per image
  float target_scale_min = 0.15f;        // target block area, fraction of the grid
  float target_scale_max = 0.2f;
  float target_aspect_min = 0.75f;       // target block h / w, drawn log-uniformly
  float target_aspect_max = 1.5f;
  float context_scale_min = 0.85f;       // context block area (aspect 1)
  float context_scale_max = 1.0f;
  int64_t min_keep = 4;                  // a context must keep more patches than this
  bool allow_overlap = false;            // true: the context keeps the target patches too
};

/// One batch of I-JEPA masks over L = gh gw patches.
struct multiblock_masks {
  int64_t batch = 0, tokens = 0;
  int64_t block_h = 0, block_w = 0;                // the target blocks' size
  int64_t context_h = 0, context_w = 0;            // the context block's size (before removals)
  token_mask context;                              // kept = K_c context patches (raster order) per sample
  int64_t target_tokens = 0;                       // K_t = block_h block_w
  std::vector<std::vector<int32_t>> targets;       // M lists of (batch, K_t) patch indices, raster order
};

namespace pretext_detail {

/// h x w of a block of area fraction U(scale) and aspect exp(U(log aspect)) (the collator's _sample_block_size).
inline std::pair<int64_t, int64_t> multiblock_size(int64_t gh, int64_t gw, float scale_lo, float scale_hi,
                                                   float aspect_lo, float aspect_hi, rng& gen) {
  const float s = gen.uniform(scale_lo, scale_hi);
  const double keep = double(int64_t(double(gh * gw) * double(s)));
  const double a = std::exp(double(gen.uniform(std::log(aspect_lo), std::log(aspect_hi))));
  int64_t h = int64_t(std::lround(std::sqrt(keep * a))), w = int64_t(std::lround(std::sqrt(keep / a)));
  while (h >= gh) --h;
  while (w >= gw) --w;
  return {std::max<int64_t>(h, 1), std::max<int64_t>(w, 1)};
}

/// An h x w block at a uniform corner: flags (gh gw), 1 inside.
inline std::vector<uint8_t> multiblock_block(int64_t gh, int64_t gw, int64_t h, int64_t w, rng& gen) {
  const int64_t top = int64_t(gen.below(uint32_t(gh - h + 1)));
  const int64_t left = int64_t(gen.below(uint32_t(gw - w + 1)));
  std::vector<uint8_t> m(size_t(gh * gw), 0);
  for (int64_t i = top; i < top + h; ++i)
    for (int64_t j = left; j < left + w; ++j) m[size_t(i * gw + j)] = 1;
  return m;
}

inline std::vector<int32_t> flagged(const std::vector<uint8_t>& m) {
  std::vector<int32_t> idx;
  for (size_t l = 0; l < m.size(); ++l)
    if (m[l]) idx.push_back(int32_t(l));
  return idx;
}

inline void check_multiblock_options(const multiblock_mask_options& o) {
  auto range = [](float lo, float hi) { return lo > 0.0f && lo <= hi && hi <= 1.0f; };
  check<value_error>(o.targets >= 1, "multiblock_mask: expected at least 1 target block, got ", o.targets);
  check<value_error>(range(o.target_scale_min, o.target_scale_max) && range(o.context_scale_min, o.context_scale_max),
                     "multiblock_mask: expected scales 0 < min <= max <= 1, got target (", o.target_scale_min, ", ",
                     o.target_scale_max, ") and context (", o.context_scale_min, ", ", o.context_scale_max, ")");
  check<value_error>(o.target_aspect_min > 0.0f && o.target_aspect_min <= o.target_aspect_max,
                     "multiblock_mask: expected target aspects 0 < min <= max, got (", o.target_aspect_min, ", ",
                     o.target_aspect_max, ")");
  check<value_error>(o.min_keep >= 0, "multiblock_mask: expected min_keep >= 0, got ", o.min_keep);
}

}  // namespace pretext_detail

/// I-JEPA masks for `batch` images of gh x gw patches: replica `first_sample / batch` of a global
/// batch of `world` x `batch` images (first_sample = 0, world = 1: one process).
inline multiblock_masks multiblock_mask(int64_t batch, int64_t gh, int64_t gw, const rng& gen,
                                        const multiblock_mask_options& o = {}, int64_t first_sample = 0,
                                        int64_t world = 1) {
  using namespace pretext_detail;
  check_multiblock_options(o);
  check<value_error>(gh >= 2 && gw >= 2, "multiblock_mask: expected a grid of at least 2 x 2 patches, got ", gh, " x ",
                     gw);
  check<value_error>(batch >= 1 && world >= 1 && first_sample >= 0 && first_sample + batch <= world * batch,
                     "multiblock_mask: expected batch >= 1 and rows [first_sample, first_sample + batch) inside ",
                     "the global batch of world x batch, got batch ", batch, ", first_sample ", first_sample,
                     ", world ", world);
  const int64_t L = gh * gw, M = o.targets, G = world * batch;
  rng size_gen = gen.fork(0);
  const auto [h, w] = multiblock_size(gh, gw, o.target_scale_min, o.target_scale_max, o.target_aspect_min,
                                      o.target_aspect_max, size_gen);
  const auto [ch, cw] = multiblock_size(gh, gw, o.context_scale_min, o.context_scale_max, 1.0f, 1.0f, size_gen);
  check<value_error>(ch * cw > o.min_keep, "multiblock_mask: a context block of ", ch, " x ", cw,
                     " patches can never keep more than min_keep = ", o.min_keep, " (grid ", gh, " x ", gw, ")");

  // Every sample of the global batch: M target blocks, then the context.
  std::vector<std::vector<int32_t>> ctx(static_cast<size_t>(G));
  std::vector<std::vector<std::vector<int32_t>>> tgt(static_cast<size_t>(G));
  for (int64_t n = 0; n < G; ++n) {
    rng g = gen.fork(1 + uint64_t(n));
    std::vector<std::vector<uint8_t>> blocks;
    for (int64_t m = 0; m < M; ++m) {
      blocks.push_back(multiblock_block(gh, gw, h, w, g));
      tgt[size_t(n)].push_back(flagged(blocks.back()));
    }
    int64_t relaxed = 0, timeout = 20;  // targets no longer constraining the context
    for (;;) {
      std::vector<uint8_t> c = multiblock_block(gh, gw, ch, cw, g);
      if (!o.allow_overlap)
        for (int64_t m = 0; m < std::max<int64_t>(M - relaxed, 0); ++m)
          for (int64_t l = 0; l < L; ++l) c[size_t(l)] &= uint8_t(blocks[size_t(m)][size_t(l)] == 0);
      ctx[size_t(n)] = flagged(c);
      if (int64_t(ctx[size_t(n)].size()) > o.min_keep) break;
      if (--timeout == 0) {
        ++relaxed;
        timeout = 20;
      }
    }
  }

  multiblock_masks out;
  out.batch = batch;
  out.tokens = L;
  out.block_h = h;
  out.block_w = w;
  out.context_h = ch;
  out.context_w = cw;
  out.target_tokens = h * w;
  int64_t kc = L;
  for (const auto& c : ctx) kc = std::min<int64_t>(kc, int64_t(c.size()));

  token_mask& cm = out.context;
  cm.batch = batch;
  cm.tokens = L;
  cm.kept = kc;
  cm.keep.resize(size_t(batch * kc));
  cm.restore.resize(size_t(batch * L));
  cm.mask = tensor<cpu>(shape{batch, L}, 1.0f);
  out.targets.assign(size_t(M), std::vector<int32_t>(size_t(batch * h * w)));
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t gn = first_sample + n;
    // Shuffled order: the K_c kept context patches first, then every other patch (raster order).
    std::vector<int32_t> order(ctx[size_t(gn)].begin(), ctx[size_t(gn)].begin() + kc);
    std::vector<uint8_t> in(size_t(L), 0);
    for (int32_t l : order) in[size_t(l)] = 1;
    for (int32_t l = 0; l < int32_t(L); ++l)
      if (!in[size_t(l)]) order.push_back(l);
    for (int64_t k = 0; k < L; ++k) cm.restore[size_t(n * L + order[size_t(k)])] = int32_t(k);
    for (int64_t k = 0; k < kc; ++k) {
      cm.keep[size_t(n * kc + k)] = order[size_t(k)];
      cm.mask[n * L + order[size_t(k)]] = 0.0f;
    }
    for (int64_t m = 0; m < M; ++m)
      std::copy_n(tgt[size_t(gn)][size_t(m)].begin(), h * w, out.targets[size_t(m)].begin() + n * h * w);
  }
  return out;
}

}  // namespace ssl
