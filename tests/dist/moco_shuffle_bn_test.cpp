// MoCo v2's shuffle-BN across ranks (MoCo's shuffle over all GPUs): under data_parallel the key
// batch is shuffled over the global batch, each rank normalises its slice of the shuffled batch in
// its bn_groups groups, and the keys come back unshuffled. W ranks with bn_groups G therefore train
// exactly as one process with bn_groups W G; shuffling within each rank (shuffle_across_ranks =
// false) gives other BN groups, hence other keys and another run.
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/moco.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
// The head's hidden BatchNorm makes every key depend on the images it is normalised with.
auto make_moco(uint64_t seed, int64_t bn_groups, bool across = true) {
  return moco_v2_method(mlp_encoder<>(36, {24, 16}, seed),
                        projection_mlp<>({.in_dim = 16, .hidden_dim = 16, .out_dim = 8, .batch_norm = true}, rng(seed + 1)),
                        {.queue_size = 40,
                         .momentum = 0.9f,
                         .bn_groups = bn_groups,
                         .seed = 4,
                         .shuffle_across_ranks = across});
}

tensor<cpu> random_batch(int64_t n) {
  rng g(21);
  tensor<cpu> x(shape{n, 1, 6, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  return x;
}

tensor<cpu> rows_of(const tensor<cpu>& t, int64_t begin, int64_t end) {
  shape s = t.shape();
  s[0] = end - begin;
  tensor<cpu> out(s);
  const int64_t row = t.numel() / t.dim(0);
  std::copy_n(t.data() + begin * row, (end - begin) * row, out.data());
  return out;
}

float max_abs(const tensor<cpu>& a, const tensor<cpu>& b) {
  REQUIRE(a.shape() == b.shape());
  float worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}
}  // namespace

TEST_CASE("moco_v2 keys shuffled across 2 ranks are the single process's keys with twice the groups") {
  // per rank 2 groups (single process 4), or 1 group per rank as MoCo's one BN group per GPU (single 2)
  const int64_t G = GENERATE(1, 2);
  CAPTURE(G);
  const tensor<cpu> x = random_batch(16);
  auto single = make_moco(5, 2 * G);
  const tensor<cpu> reference = single.compute_keys(x);  // (16, 8): 2G groups of the shuffled 16
  std::vector<tensor<cpu>> mine(2), local(2);
  thread_group(2).run([&](thread_communicator& comm) {
    const int r = comm.rank();
    const tensor<cpu> shard = rows_of(x, 8 * r, 8 * (r + 1));
    auto across = make_moco(5, G), within = make_moco(5, G);
    data_parallel dp_across(across, comm), dp_within(within, comm, {.broadcast_initial_state = false});
    within.set_batch_gather({});  // data_parallel without the gather: each rank its own 8 keys
    CHECK(across.shuffles_across_ranks());
    CHECK_FALSE(within.shuffles_across_ranks());
    mine[size_t(r)] = across.compute_keys(shard);
    local[size_t(r)] = within.compute_keys(shard);
  });
  for (int r = 0; r < 2; ++r) {
    CHECK(max_abs(mine[size_t(r)], rows_of(reference, 8 * r, 8 * (r + 1))) < 1e-6f);
    CHECK(max_abs(local[size_t(r)], rows_of(reference, 8 * r, 8 * (r + 1))) > 1e-3f);
  }
}

TEST_CASE("moco_v2 under data_parallel with shuffle-BN across ranks: the single-process run") {
  const auto d = tiny_data();
  auto single = make_moco(5, 4);
  const auto reference = train_single(single, d, 16);
  const auto ranks =
      train_ranks(2, 8, d, [](thread_communicator& comm) { return make_moco(comm.rank() == 0 ? 5 : 9, 2); });
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  // each rank shuffling within its own batch: other BN groups for the keys, another run
  const auto within = train_ranks(2, 8, d, [](thread_communicator&) { return make_moco(5, 2, false); });
  CHECK(within[1].params == within[0].params);
  CHECK(max_abs_difference(within[0].params, reference) > 1e-4f);
}

TEST_CASE("moco_v2 shuffle-BN across ranks: the wrapper's gather is checked and removed with the wrapper") {
  auto m = make_moco(5, 2);
  m.set_replica(1, 2);
  m.set_batch_gather([](const tensor<cpu>& t) { return t; });  // a gather that forgot the other rank
  CHECK_THROWS_AS(m.compute_keys(random_batch(8)), shape_error);
  thread_group(1).run([&](thread_communicator& comm) {
    data_parallel dp(m, comm);  // one rank: set_replica(0, 1), nothing to shuffle across
    CHECK_FALSE(m.shuffles_across_ranks());
  });
  CHECK_FALSE(m.shuffles_across_ranks());
  CHECK(m.compute_keys(random_batch(8)).shape() == shape{8, 8});
}

TEST_CASE("moco_v2 shuffle-BN across ranks: the queue takes the keys the shuffle gathered, without a second gather") {
  // Rank 0 of 2 whose "other rank" holds a copy of its batch: the gather stacks [t; t].
  auto m = make_moco(5, 2);
  m.set_replica(0, 2);
  int gathers = 0;
  m.set_batch_gather([&](const tensor<cpu>& t) {
    ++gathers;
    return concat_batch({&t, &t});
  });
  REQUIRE(m.shuffles_across_ranks());
  const tensor<cpu> x = random_batch(8);
  m.train_step({x, x});
  CHECK(gathers == 2);  // the images, then the shuffled keys
  // the queue's hook gets every rank's keys without calling its gather
  int hook_gathers = 0;
  m.gather_step_keys([&](const tensor<cpu>& t) {
    ++hook_gathers;
    return t;
  });
  CHECK(hook_gathers == 0);
  m.after_step({1, 10, 0});
  CHECK(m.pointer() == 16);  // both ranks' 8 keys entered the queue
  // with the shuffle within the rank, the hook gathers as before
  auto within = make_moco(5, 2, false);
  within.set_replica(0, 2);
  within.set_batch_gather([](const tensor<cpu>& t) { return concat_batch({&t, &t}); });
  within.train_step({x, x});
  within.gather_step_keys([&](const tensor<cpu>& t) {
    ++hook_gathers;
    return concat_batch({&t, &t});
  });
  CHECK(hook_gathers == 1);
  within.after_step({1, 10, 0});
  CHECK(within.pointer() == 16);
}
