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
// The backend is the parts' backend tag: jigsaw_method<convnet_s<cuda>, projection_mlp<cuda>> runs
// the same step on the GPU (under nvcc); puzzles are drawn on the host, the tiles cut on the device.
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../losses/cross_entropy.hpp"
#include "../losses/loss.hpp"
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
    const rng g = rng(opt_.seed, 0x6a6967u).fork(draws_++);
    if constexpr (std::same_as<backend_type, cpu>) {
      return train_on(pretext::jigsaw_batch(views[0], perms_, g, opt_.tile, replica_.first_row(views[0].dim(0))));
    } else {
      // The same puzzles on the device: jigsaw_batch of a batch of element indices (the draws
      // depend on the shape alone) is the gather map of the tiles, applied by one gather kernel.
      const auto map =
          pretext::jigsaw_batch(methods_detail::element_index_images(views[0].shape()), perms_, g, opt_.tile,
                                replica_.first_row(views[0].dim(0)));
      return run(methods_detail::gather_per_image(views[0], map.tiles), map.labels);
    }
  }

  /// Data-parallel replica `rank` of `world_size`, each with B images of every global batch of
  /// B world_size (dist::data_parallel calls it): the puzzles are this replica's images of the
  /// global batch's puzzles, as one process on the global batch would draw them.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }

  /// One step on given puzzles: tiles (9B, C, t, t), B labels (deterministic; for tests).
  /// Host tiles; a device backend uploads them.
  step_stats train_on(const pretext::jigsaw_batch_result& jb) {
    if constexpr (std::same_as<backend_type, cpu>)
      return run(jb.tiles, jb.labels);
    else
      return run(to_backend<backend_type>(jb.tiles), jb.labels);
  }

  const pretext::permutation_set& permutations() const { return perms_; }

 private:
  // tiles (9B, C, t, t) on the backend, the 9 tiles of image n at rows 9n .. 9n+8; B labels.
  step_stats run(const tensor<backend_type>& tiles, const std::vector<int64_t>& labels) {
    const int64_t B = int64_t(labels.size());
    check<shape_error>(tiles.rank() == 4 && tiles.dim(0) == 9 * B, "jigsaw: expected 9 tiles per label (", 9 * B,
                       " tiles), got tiles of shape ", tiles.shape());
    auto h = encoder_.forward(tiles);
    const int64_t F = encoder_.feature_dim();
    auto logits = head_.forward(h.y.reshaped(shape{B, 9 * F}));
    auto r = loss_(logits.y, labels);
    encoder_.backward(std::move(h.saved), head_.backward(logits.saved, r.grad_logits).reshaped(shape{9 * B, F}));
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "jigsaw");
    return {loss};
  }

  jigsaw_options opt_;
  pretext::permutation_set perms_;
  uint64_t draws_ = 0;
  methods_detail::replica_place replica_;  // data-parallel: this replica's place in the global batch
};

}  // namespace ssl
