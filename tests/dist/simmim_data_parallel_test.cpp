// SimMIM under data_parallel: every replica masks its rows of the global batch's unit masks and
// divides its loss by the global masked count / W (mask units cut at the grid's edge make images hide
// different numbers of patches), so W ranks of batch B train exactly as one process of batch W B.
#include <ssl/methods/simmim.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
using tiny_simmim = simmim<vit<>>;
// 6x6 images, patch 2: a 3 x 3 grid; units of 2 patches: 2 x 2 units, the edge ones cut
tiny_simmim make_simmim(uint64_t seed) {
  vit_options o{.image_size = 6, .patch = 2, .in_channels = 1, .dim = 8, .depth = 2, .heads = 2, .mlp_ratio = 2.0f};
  o.mask_token = true;
  return tiny_simmim(vit<>(o, rng(seed)), 1, {.mask_ratio = 0.5f, .seed = 4}, rng(seed + 1));
}
/// A SimMIM that data_parallel cannot place (set_replica hidden): every rank masks as rank 0 and
/// divides by its own count.
struct unplaced_simmim : tiny_simmim {
  explicit unplaced_simmim(tiny_simmim m) : tiny_simmim(std::move(m)) {}
  void set_replica() = delete;
};
}  // namespace

TEST_CASE("simmim set_replica: the halves of a batch hide different numbers of patches at some steps") {
  const auto whole = make_simmim(1);
  int unequal_steps = 0;
  for (int64_t step = 0; step < 8; ++step) {
    const auto m = whole.mask_for_step(12, 3, 3, step);
    int64_t first = 0, second = 0;
    for (int64_t n = 0; n < 6; ++n) first += m.hidden_in(n);
    for (int64_t n = 6; n < 12; ++n) second += m.hidden_in(n);
    unequal_steps += first != second;
  }
  CHECK(unequal_steps >= 2);  // so a per-replica mean would weigh the images unequally
}

TEST_CASE("simmim under data_parallel: 2 ranks of 6 images train as one process of 12") {
  const auto d = tiny_data(6);
  auto single = make_simmim(2);
  const auto reference = train_single(single, d, 12, 0.05f, noisy_views{1});
  const auto ranks = train_ranks(2, 6, d, [](thread_communicator& comm) { return make_simmim(comm.rank() == 0 ? 2 : 3); },
                                 0.05f, noisy_views{1});
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[0].steps == 8);
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  // without set_replica both ranks would draw the first rows' masks: a different run
  const auto same_masks = train_ranks(2, 6, d, [](thread_communicator&) { return unplaced_simmim(make_simmim(2)); },
                                      0.05f, noisy_views{1});
  CHECK(max_abs_difference(same_masks[0].params, reference) > 1e-4f);
}
