#pragma once
// Jigsaw puzzles (Noroozi & Favaro 2016): cut each image into a 3x3 grid, take a tile x tile
// crop at a random offset in each cell, shuffle the nine tiles by one permutation of a fixed set,
// and predict which permutation from the concatenated tile features (shared encoder).
//   x = views[0]                          (B, C, H, W)
//   tiles, y = jigsaw_batch(x, perms)     (9B, C, t, t), y: B permutation indices
//   f = enc(tiles)                        (9B, F)  -> viewed as (B, 9F), tiles of image n in order
//   logits = head(f)                      (B, P)
//   L = cross_entropy(logits, y)
// For 28x28 images the cells are 9x9; the default tile of 7 leaves a 2-pixel jitter that stops the
// network from matching tile edges, and 64 permutations (chosen for maximal Hamming distance)
// keep the task learnable in minutes. The encoder must accept t x t inputs (ConvNet-S reduces
// 7x7 tiles to 1x1 before its global pool).
#include <string>
#include <utility>
#include <vector>

#include "../losses/cross_entropy.hpp"
#include "../pretext/jigsaw.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

struct jigsaw_options {
  int permutations = 64;  // size of the permutation set = number of classes
  int64_t tile = 7;       // tile side (at most the cell side H / 3)
  uint64_t seed = 0;      // permutation set and puzzle draws
};

template <class E, class H, class L = cross_entropy>
class jigsaw_method : public methods_detail::encoder_head_loss<E, H, L> {
  static_assert(Encoder<E>, "jigsaw_method<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "jigsaw_method<E, H, L>: H must satisfy ssl::Head (the permutation classifier on 9F features)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "jigsaw_method<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, std::vector<int64_t>>,
                "jigsaw_method<E, H, L>: L must satisfy ssl::Loss on (logits (N, P), labels N)");

  using parts = methods_detail::encoder_head_loss<E, H, L>;
  using parts::encoder_;
  using parts::head_;
  using parts::loss_;

 public:
  using backend_type = typename E::backend_type;

  jigsaw_method(E encoder, H head, jigsaw_options o = {}, L loss = L{})
      : parts(std::move(encoder), std::move(head), std::move(loss)), opt_(o),
        perms_(o.permutations, o.seed) {
    check<shape_error>(9 * encoder_.feature_dim() == head_.in_dim(), "jigsaw: the head sees 9 tile features of size ",
                       encoder_.feature_dim(), " (in_dim ", 9 * encoder_.feature_dim(), ") but expects in_dim ",
                       head_.in_dim());
    check<shape_error>(head_.out_dim() == o.permutations, "jigsaw: the head must give one logit per permutation (",
                       o.permutations, "), got out_dim ", head_.out_dim());
  }

  /// views: one (or more; the first is used) batch (B, C, H, W) with H, W >= 3 tile.
  /// Each call draws fresh puzzles (stream `draws` of the seed).
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(!views.empty(), "jigsaw: expected at least one view, got none");
    return train_on(pretext::jigsaw_batch(views[0], perms_, rng(opt_.seed, 0x6a6967u).fork(draws_++), opt_.tile));
  }

  /// One step on given puzzles: tiles (9B, C, t, t), B labels (deterministic; for tests).
  step_stats train_on(const pretext::jigsaw_batch_result& jb) {
    const int64_t B = int64_t(jb.labels.size());
    check<shape_error>(jb.tiles.rank() == 4 && jb.tiles.dim(0) == 9 * B, "jigsaw: expected 9 tiles per label (",
                       9 * B, " tiles), got tiles of shape ", jb.tiles.shape());
    auto h = encoder_.forward(jb.tiles);
    const int64_t F = encoder_.feature_dim();
    auto logits = head_.forward(h.y.reshaped(shape{B, 9 * F}));
    auto r = loss_(logits.y, jb.labels);
    expect_finite_loss(r.value, "jigsaw");
    encoder_.backward(std::move(h.saved), head_.backward(logits.saved, r.grad_logits).reshaped(shape{9 * B, F}));
    return {r.value};
  }

  const pretext::permutation_set& permutations() const { return perms_; }

 private:
  jigsaw_options opt_;
  pretext::permutation_set perms_;
  uint64_t draws_ = 0;
};

}  // namespace ssl
