// Methods that draw per-image randomness themselves under data_parallel: data_parallel tells each
// replica its place in the global batch (set_replica), each draws its rows of the global batch's
// draw, and W ranks of batch B then train exactly as one process of batch B W (MAE's and MaskFeat's
// masks, jigsaw's puzzles; DINOv2's iBOT masks with the distributed Sinkhorn-Knopp in
// sinkhorn_data_parallel_test.cpp).
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/jigsaw.hpp>
#include <ssl/methods/mae.hpp>
#include <ssl/methods/maskfeat.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
using tiny_mae = mae<vit<>, mae_decoder<>>;
tiny_mae make_mae(uint64_t seed) {
  vit<> enc({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f}, rng(seed));
  mae_decoder<> dec({.in_dim = 8, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f, .grid = 4, .patch_dim = 4},
                    rng(seed + 1));
  return tiny_mae(std::move(enc), std::move(dec), {.mask_ratio = 0.75f, .norm_pix_loss = true, .seed = 9});
}
/// An MAE that data_parallel cannot place (set_replica hidden): every rank masks as rank 0.
struct unplaced_mae : tiny_mae {
  explicit unplaced_mae(tiny_mae m) : tiny_mae(std::move(m)) {}
  void set_replica() = delete;
};
auto make_maskfeat(uint64_t seed) {
  return maskfeat<vit<>>(vit<>({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2}, rng(seed)),
                         1, {.mask_ratio = 0.5f, .seed = 4});
}
auto make_jigsaw(uint64_t seed) {
  // 3x3 tiles of 12x12 images through a small MLP; 6 permutation classes
  return jigsaw_method(mlp_encoder<>(9, {8}, seed),
                       projection_mlp<>({.in_dim = 72, .hidden_dim = 72, .out_dim = 6, .layers = 1}, rng(seed + 1)),
                       {.permutations = 6, .tile = 3, .seed = 2});
}
}  // namespace

TEST_CASE("set_replica: a replica's masks are its rows of the global batch's masks") {
  auto whole = make_mae(1), part = make_mae(1);
  const token_mask all = whole.mask_for_step(12, 16, 5);
  part.set_replica(2, 3);
  const token_mask mine = part.mask_for_step(4, 16, 5);
  REQUIRE(mine.kept == all.kept);
  CHECK(std::equal(mine.keep.begin(), mine.keep.end(), all.keep.begin() + 8 * all.kept));
  CHECK(std::equal(mine.restore.begin(), mine.restore.end(), all.restore.begin() + 8 * 16));
  CHECK_THROWS_AS(part.set_replica(3, 3), value_error);
}

/// Trains make(2) in one process (batch 12) and 2 ranks of batch 6 (rank 1 built from another seed,
/// replaced by rank 0's broadcast); checks identical replicas at the single-process weights and
/// returns those weights.
template <class Make>
std::vector<float> expect_single_process_run(Make make, int64_t side = 8) {
  const auto d = tiny_data(side);
  auto single = make(2);
  const auto reference = train_single(single, d, 12, 0.05f, noisy_views{1});
  const auto ranks = train_ranks(2, 6, d, [&](thread_communicator& comm) { return make(comm.rank() == 0 ? 2 : 3); },
                                 0.05f, noisy_views{1});
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  return reference;
}

TEST_CASE("mae under data_parallel: every replica masks its own rows; the single-process run") {
  const auto reference = expect_single_process_run(make_mae);
  // without set_replica both ranks would draw the first rows' masks: a different run
  const auto same_masks = train_ranks(2, 6, tiny_data(8), [](thread_communicator&) { return unplaced_mae(make_mae(2)); },
                                      0.05f, noisy_views{1});
  CHECK(same_masks[1].params == same_masks[0].params);
  CHECK(max_abs_difference(same_masks[0].params, reference) > 1e-4f);
}

TEST_CASE("maskfeat under data_parallel: the single-process run") { expect_single_process_run(make_maskfeat); }

TEST_CASE("jigsaw under data_parallel: each replica cuts its images' puzzles of the global draw") {
  expect_single_process_run(make_jigsaw, 12);
}
