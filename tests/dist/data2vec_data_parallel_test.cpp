// data2vec under data_parallel: every replica draws its rows of the global batch's block masks and
// divides its loss by the global masked count over the replicas (images hide different numbers of
// patches), and the teachers follow identical replicas: W ranks of batch B train exactly as one
// process of batch W B, teacher included.
#include <ssl/methods/data2vec.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
using tiny_data2vec = data2vec<vit<>>;
tiny_data2vec make_data2vec(uint64_t seed) {
  vit_options o{.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 2, .heads = 2, .mlp_ratio = 2.0f};
  o.mask_token = true;
  return tiny_data2vec(vit<>(o, rng(seed)), {.mask_ratio = 0.3f, .momentum_base = 0.9f, .momentum_final = 0.9f, .seed = 4}, rng(seed + 1));
}
/// A data2vec that data_parallel cannot place (set_replica hidden): every rank masks as rank 0.
struct unplaced_data2vec : tiny_data2vec {
  explicit unplaced_data2vec(tiny_data2vec m) : tiny_data2vec(std::move(m)) {}
  void set_replica() = delete;
};
}  // namespace

TEST_CASE("data2vec set_replica: a replica's masks are its rows of the global batch's masks, the count global") {
  auto whole = make_data2vec(1), part = make_data2vec(1);
  int64_t all_count = 0, part_count = 0;
  const auto all = whole.masks_for_step(12, 4, 4, 3, &all_count);
  part.set_replica(1, 3);
  const auto mine = part.masks_for_step(4, 4, 4, 3, &part_count);
  CHECK(std::equal(mine.hidden.begin(), mine.hidden.end(), all.hidden.begin() + 4 * 16));
  CHECK(part_count == all_count);
  // in the run below (8 steps of 12 images) the two halves of a batch hide different numbers of
  // patches at some step: equal shares of the loss would then weight the images unequally
  int unequal_steps = 0;
  for (int64_t step = 0; step < 8; ++step) {
    const auto m = whole.masks_for_step(12, 4, 4, step);
    int64_t first = 0, second = 0;
    for (int64_t n = 0; n < 6; ++n) first += m.hidden_in(n);
    for (int64_t n = 6; n < 12; ++n) second += m.hidden_in(n);
    unequal_steps += first != second;
  }
  CHECK(unequal_steps >= 2);
}

TEST_CASE("data2vec under data_parallel: 2 ranks of 6 images train as one process of 12, teacher included") {
  const auto d = tiny_data(8);
  auto single = make_data2vec(2);
  const auto reference = train_single(single, d, 12, 0.05f, noisy_views{1});
  param_list<cpu> tp;
  single.teacher().collect(tp, "");
  const auto reference_teacher = flat_params(tp);
  const auto ranks = train_ranks(2, 6, d, [](thread_communicator& comm) { return make_data2vec(comm.rank() == 0 ? 2 : 3); },
                                 0.05f, noisy_views{1});
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[1].buffers == ranks[0].buffers);
  CHECK(ranks[0].steps == 8);
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  CHECK(max_abs_difference(ranks[0].buffers, reference_teacher) < 2e-5f);
  // without set_replica both ranks would draw the first rows' masks: a different run
  const auto same_masks = train_ranks(2, 6, d, [](thread_communicator&) { return unplaced_data2vec(make_data2vec(2)); },
                                      0.05f, noisy_views{1});
  CHECK(max_abs_difference(same_masks[0].params, reference) > 1e-4f);
}
