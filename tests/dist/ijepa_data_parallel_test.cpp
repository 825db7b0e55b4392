// I-JEPA under data_parallel: every replica draws its rows of the global batch's multi-block masks
// (the context size K_c is the global batch's minimum), the loss is a mean over equal shares, and
// the target encoders follow identical replicas: W ranks of batch B train exactly as one process of
// batch W B, target encoders included.
#include <ssl/methods/ijepa.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
using tiny_ijepa = ijepa<vit<>, ijepa_predictor<>>;
tiny_ijepa make_ijepa(uint64_t seed) {
  vit<> enc({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f}, rng(seed));
  ijepa_predictor<> pred({.in_dim = 8, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f, .grid = 4}, rng(seed + 1));
  return tiny_ijepa(std::move(enc), std::move(pred),
                    {.masks = {.targets = 2, .target_scale_min = 0.2f, .target_scale_max = 0.25f, .min_keep = 2},
                     .momentum_base = 0.9f, .seed = 4});
}
/// An I-JEPA that data_parallel cannot place (set_replica hidden): every rank masks as rank 0.
struct unplaced_ijepa : tiny_ijepa {
  explicit unplaced_ijepa(tiny_ijepa m) : tiny_ijepa(std::move(m)) {}
  void set_replica() = delete;
};
}  // namespace

TEST_CASE("ijepa set_replica: a replica's masks are its rows of the global batch's masks") {
  auto whole = make_ijepa(1), part = make_ijepa(1);
  const auto all = whole.masks_for_step(12, 3);
  part.set_replica(1, 3);
  const auto mine = part.masks_for_step(4, 3);
  REQUIRE(mine.context.kept == all.context.kept);
  CHECK(std::equal(mine.context.keep.begin(), mine.context.keep.end(), all.context.keep.begin() + 4 * all.context.kept));
  for (size_t t = 0; t < all.targets.size(); ++t)
    CHECK(std::equal(mine.targets[t].begin(), mine.targets[t].end(), all.targets[t].begin() + 4 * all.target_tokens));
}

TEST_CASE("ijepa under data_parallel: 2 ranks of 6 images train as one process of 12, target encoder included") {
  const auto d = tiny_data(8);
  auto single = make_ijepa(2);
  const auto reference = train_single(single, d, 12, 0.05f, noisy_views{1});
  param_list<cpu> tp;
  single.target_encoder().collect(tp, "");
  const auto reference_target = flat_params(tp);
  const auto ranks = train_ranks(2, 6, d, [](thread_communicator& comm) { return make_ijepa(comm.rank() == 0 ? 2 : 3); },
                                 0.05f, noisy_views{1});
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[1].buffers == ranks[0].buffers);
  CHECK(ranks[0].steps == 8);
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  // the buffers are the target encoder's weights
  CHECK(max_abs_difference(ranks[0].buffers, reference_target) < 2e-5f);
  // without set_replica both ranks would draw the first rows' masks: a different run
  const auto same_masks = train_ranks(2, 6, d, [](thread_communicator&) { return unplaced_ijepa(make_ijepa(2)); },
                                      0.05f, noisy_views{1});
  CHECK(max_abs_difference(same_masks[0].params, reference) > 1e-4f);
}
