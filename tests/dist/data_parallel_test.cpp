// data_parallel over W thread ranks: the replicas stay bit-identical, and with a loss that sees the
// global batch (global_nt_xent) and no BatchNorm, W ranks with batch B train exactly as one process
// with batch B W (up to the order of float sums).
#include <ssl/dist/global_nt_xent.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/simclr.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
template <class L>
auto make_simclr(L loss, bool head_bn, uint64_t seed) {
  return simclr<mlp_encoder<>, projection_mlp<>, L>(
      mlp_encoder<>(36, {24, 16}, seed),
      projection_mlp<>({.in_dim = 16, .hidden_dim = 16, .out_dim = 8, .batch_norm = head_bn}, rng(seed + 1)),
      std::move(loss));
}
}  // namespace

TEST_CASE("data_parallel with global_nt_xent trains as one process on the global batch") {
  const auto d = tiny_data();
  const int64_t B = 4;
  for (int W : {2, 3}) {
    CAPTURE(W);
    auto single = make_simclr(nt_xent(0.5f), false, 5);
    const auto untouched = [&] {
      param_list<cpu> ps;
      single.collect(ps, "");
      return flat_params(ps);
    }();
    const auto reference = train_single(single, d, B * W);
    // Ranks other than 0 build their replica from another seed: the wrapper's initial broadcast
    // must make them identical to rank 0's.
    const auto ranks = train_ranks(W, B, d, [](thread_communicator& comm) {
      return make_simclr(global_nt_xent<thread_communicator>(comm, 0.5f), false, comm.rank() == 0 ? 5 : 77);
    });
    for (const auto& r : ranks) {
      CHECK(r.steps == 2 * (48 / (B * W)));
      CHECK(r.spread == 0.0f);
      CHECK(r.params == ranks[0].params);  // bit-identical replicas
    }
    CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
    CHECK(max_abs_difference(untouched, reference) > 1e-3f);  // training moved the weights
    // Each rank's own negatives only (plain nt_xent): a different loss, visibly different weights.
    const auto local = train_ranks(W, B, d, [](thread_communicator&) { return make_simclr(nt_xent(0.5f), false, 5); });
    CHECK(local[1].params == local[0].params);
    CHECK(max_abs_difference(local[0].params, reference) > 1e-4f);
  }
}

TEST_CASE("data_parallel keeps BatchNorm replicas identical and averages their running statistics") {
  const auto d = tiny_data();
  const auto ranks = train_ranks(2, 6, d, [](thread_communicator& comm) {
    return make_simclr(global_nt_xent<thread_communicator>(comm, 0.2f), true, 5);
  });
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[1].buffers == ranks[0].buffers);  // running mean / var averaged, num_batches_tracked equal
  CHECK(ranks[0].spread == 0.0f);
}

TEST_CASE("data_parallel's stop vote and buffer policy") {
  std::vector<int> votes(2);
  thread_group(2).run([&](thread_communicator& comm) {
    auto m = make_simclr(global_nt_xent<thread_communicator>(comm), false, 5);
    data_parallel dp(m, comm);
    votes[size_t(comm.rank())] = dp.agree_to_stop(comm.rank() == 1);
    CHECK(dp.rank() == comm.rank());
    CHECK(dp.world_size() == 2);
  });
  CHECK(votes == std::vector<int>{1, 1});
  CHECK(default_buffer_sync("encoder.bn.running_mean") == buffer_sync::mean);
  CHECK(default_buffer_sync("head.bn.0.running_var") == buffer_sync::mean);
  CHECK(default_buffer_sync("center") == buffer_sync::mean);
  CHECK(default_buffer_sync("patch_center") == buffer_sync::mean);
  CHECK(default_buffer_sync("queue") == buffer_sync::keep);
  CHECK(default_buffer_sync("teacher.backbone.blocks.0.attn.qkv.weight") == buffer_sync::keep);
  CHECK(default_buffer_sync("encoder.bn.num_batches_tracked") == buffer_sync::keep);
  single_process one;
  auto m = make_simclr(nt_xent(), false, 5);
  CHECK_THROWS_AS(data_parallel(m, one, {.buffer_policy = {}}), value_error);  // a policy is required
}

TEST_CASE("all_gather_rows stacks every rank's rows in rank order") {
  std::vector<tensor<cpu>> got(3);
  thread_group(3).run([&](thread_communicator& comm) {
    tensor<cpu> t(shape{2, 2}, float(comm.rank()));
    got[size_t(comm.rank())] = all_gather_rows(comm, t);
  });
  for (const auto& g : got) {
    REQUIRE(g.shape() == shape{6, 2});
    for (int64_t i = 0; i < 12; ++i) CHECK(g[i] == float(i / 4));
  }
}
