// NNCLR under data_parallel: the loss is taken over every rank's neighbours and predictions and the
// support set receives every rank's view-1 embeddings, so W ranks of batch B train exactly as one
// process of batch W B, support sets included. Each rank's loss over its own rows is another run.
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/nnclr.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
using tiny_nnclr = nnclr_method<mlp_encoder<>, projection_mlp<>>;

/// No BatchNorm in the heads (its statistics would be per rank); a support set of 20 rows, so it
/// wraps during the run.
tiny_nnclr make_nnclr(uint64_t seed) {
  return tiny_nnclr(mlp_encoder<>(36, {24, 16}, seed),
                    projection_mlp<>({.in_dim = 16, .hidden_dim = 16, .out_dim = 8, .batch_norm = false}, rng(seed + 1)),
                    projection_mlp<>({.in_dim = 8, .hidden_dim = 16, .out_dim = 8, .batch_norm = false}, rng(seed + 2)),
                    {.support_size = 20, .temperature = 0.2f});
}
/// NNCLR that data_parallel cannot give the gather: each rank's loss and support set of its own rows.
struct local_nnclr : tiny_nnclr {
  explicit local_nnclr(tiny_nnclr m) : tiny_nnclr(std::move(m)) {}
  void set_batch_gather() = delete;
};

std::vector<float> support_of(tiny_nnclr& m) {
  const auto& rows = m.support_set().rows();
  return std::vector<float>(rows.data(), rows.data() + rows.numel());
}
}  // namespace

TEST_CASE("nnclr under data_parallel: 2 ranks of 6 images train as one process of 12, support set included") {
  const auto d = tiny_data();
  auto single = make_nnclr(5);
  const auto reference = train_single(single, d, 12, 0.05f);
  REQUIRE(single.support_set().filled() == 20);
  const auto reference_support = support_of(single);
  std::vector<std::vector<float>> supports(2);
  const auto ranks = train_ranks(
      2, 6, d,
      [&](thread_communicator& comm) {
        auto m = make_nnclr(comm.rank() == 0 ? 5 : 8);  // rank 1's init is replaced by rank 0's broadcast
        CHECK_FALSE(m.across_ranks());
        return m;
      },
      0.05f);
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[1].buffers == ranks[0].buffers);  // the support sets too
  CHECK(ranks[0].steps == 8);
  const float gap = max_abs_difference(ranks[0].params, reference);
  // the support set is the last buffer group: its rows are the reference's
  REQUIRE(ranks[0].buffers.size() >= reference_support.size() + 2);
  const std::vector<float> rank_support(ranks[0].buffers.end() - 2 - int64_t(reference_support.size()),
                                        ranks[0].buffers.end() - 2);
  const float support_gap = max_abs_difference(rank_support, reference_support);
  const auto local = train_ranks(2, 6, d, [&](thread_communicator&) { return local_nnclr(make_nnclr(5)); }, 0.05f);
  const float local_gap = max_abs_difference(local[0].params, reference);
  auto init = make_nnclr(5);
  param_list<cpu> ps;
  init.collect(ps, "");
  const float moved = max_abs_difference(flat_params(ps), reference);  // how far training went
  CAPTURE(gap, support_gap, local_gap, moved);
  // (measured: gaps 1.5e-8 and 6e-8; the local run 1.1e-4 away, 15% of the distance trained)
  CHECK(gap < 1e-6f);
  CHECK(support_gap < 1e-6f);
  CHECK(local_gap > 0.05f * moved);
  CHECK(local_gap > 100 * std::max(gap, support_gap));
}

TEST_CASE("nnclr: a batch gather that returns the wrong rows is an error naming it") {
  auto m = make_nnclr(5);
  m.set_replica(0, 2);
  m.set_batch_gather([](const tensor<cpu>& t) { return t; });  // forgot the other rank
  CHECK(m.across_ranks());
  std::vector<tensor<cpu>> views(2, tensor<cpu>(shape{4, 1, 6, 6}, 0.5f));
  views[1][3] = 0.1f;
  CHECK_THROWS_WITH(m.train_step(views), Catch::Contains("batch gather returned") && Catch::Contains("2 ranks of 4"));
}
