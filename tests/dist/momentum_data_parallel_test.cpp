// Methods with a momentum teacher under data_parallel: MoCo v2's queue receives the keys of every
// rank (identical queues), MoCo v3 contrasts with the keys of every rank (global_moco_v3), and with
// no BatchNorm MoCo v2, MoCo v3 and BYOL on W ranks of batch B train exactly as one process with
// batch B W.
#include <ssl/dist/global_moco_v3.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/byol.hpp>
#include <ssl/methods/moco.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
projection_mlp<> head(int64_t in, int64_t out, uint64_t seed) {
  return projection_mlp<>({.in_dim = in, .hidden_dim = 16, .out_dim = out, .batch_norm = false}, rng(seed));
}
// bn_groups 1: no key shuffle (nothing to normalise here), so the single process is the reference.
auto make_moco(uint64_t seed) {
  return moco_v2_method(mlp_encoder<>(36, {24, 16}, seed), head(16, 8, seed + 1),
                        {.queue_size = 40, .momentum = 0.9f, .bn_groups = 1, .seed = 4});
}
template <class L>
auto make_moco_v3(uint64_t seed, L loss) {
  return moco_v3_method<mlp_encoder<>, projection_mlp<>, projection_mlp<>, L>(
      mlp_encoder<>(36, {24, 16}, seed), head(16, 8, seed + 1), head(8, 8, seed + 2), {.momentum_base = 0.9f},
      std::move(loss));
}
auto make_byol(uint64_t seed) {
  return byol_method(mlp_encoder<>(36, {24, 16}, seed), head(16, 8, seed + 1), head(8, 8, seed + 2),
                     {.tau_base = 0.9f});
}
}  // namespace

TEST_CASE("moco v2 under data_parallel: one global queue, the single-process run") {
  const auto d = tiny_data();
  auto single = make_moco(5);
  const auto reference = train_single(single, d, 8);
  const auto ranks = train_ranks(2, 4, d, [](thread_communicator& comm) { return make_moco(comm.rank() == 0 ? 5 : 9); });
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[1].buffers == ranks[0].buffers);  // key network, queue, queue pointer
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  CHECK(single.pointer() == (12 * 8) % 40);  // 12 steps of 8 keys
  std::vector<std::pair<std::string, tensor<cpu>*>> bs;
  single.collect_buffers(bs, "");
  CHECK(max_abs_difference(ranks[0].buffers, flat_buffers(bs)) < 2e-5f);
}

TEST_CASE("byol under data_parallel: the single-process run, identical teachers") {
  const auto d = tiny_data();
  auto single = make_byol(5);
  const auto reference = train_single(single, d, 12);
  const auto ranks = train_ranks(3, 4, d, [](thread_communicator& comm) { return make_byol(comm.rank() == 0 ? 5 : 6); });
  for (const auto& r : ranks) {
    CHECK(r.params == ranks[0].params);
    CHECK(r.buffers == ranks[0].buffers);
  }
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
}

TEST_CASE("moco v3 under data_parallel with global_moco_v3: the single-process run") {
  const auto d = tiny_data();
  auto single = make_moco_v3(5, moco_v3(0.2f));
  const auto reference = train_single(single, d, 12);
  const auto ranks = train_ranks(3, 4, d, [](thread_communicator& comm) {
    return make_moco_v3(comm.rank() == 0 ? 5 : 8, global_moco_v3<thread_communicator>(comm, 0.2f));
  });
  for (const auto& r : ranks) {
    CHECK(r.params == ranks[0].params);
    CHECK(r.buffers == ranks[0].buffers);
  }
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  // each rank's own keys only (plain moco_v3): fewer negatives, other weights
  const auto local = train_ranks(3, 4, d, [](thread_communicator&) { return make_moco_v3(5, moco_v3(0.2f)); });
  CHECK(max_abs_difference(local[0].params, reference) > 1e-4f);
}

TEST_CASE("moco_v3 with more keys than queries: positives at an offset") {
  rng g(3);
  auto randn = [&](int64_t r, int64_t c) {
    tensor<cpu> t(shape{r, c});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
    return t;
  };
  // All 6 queries against all 6 keys = the mean of two halves of 3 queries against the same 6 keys.
  const tensor<cpu> q1 = randn(6, 4), q2 = randn(6, 4), k1 = randn(6, 4), k2 = randn(6, 4);
  const moco_v3 loss(0.5f);
  const auto whole = loss(q1, q2, k1, k2);
  auto half = [&](const tensor<cpu>& t, int64_t h) {
    tensor<cpu> out(shape{3, 4});
    std::copy_n(t.data() + h * 12, 12, out.data());
    return out;
  };
  const auto a = loss(half(q1, 0), half(q2, 0), k1, k2, 0), b = loss(half(q1, 1), half(q2, 1), k1, k2, 3);
  CHECK((a.value + b.value) / 2 == Approx(whole.value).epsilon(1e-5));
  for (int64_t i = 0; i < 12; ++i) {
    CHECK(a.grad_q1[i] == Approx(2 * whole.grad_q1[i]).margin(1e-6));
    CHECK(b.grad_q2[i] == Approx(2 * whole.grad_q2[12 + i]).margin(1e-6));
  }
  CHECK_THROWS_AS(loss(half(q1, 0), half(q2, 0), k1, k2, 4), value_error);
  CHECK_THROWS_AS(loss(q1, q2, half(k1, 0), half(k2, 0), 0), shape_error);
}
