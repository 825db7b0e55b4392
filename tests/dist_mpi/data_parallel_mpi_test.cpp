// data_parallel over MPI: SimCLR replicas built from different seeds on each rank start identical
// (rank 0's state is broadcast), train on their own shards, and stay bit-identical; with 2 ranks
// they also match the same program run with ranks as threads (thread_group).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <ssl/dist/data_parallel.hpp>
#include <ssl/dist/mpi_communicator.hpp>
#include <ssl/dist/thread_group.hpp>
#include <ssl/ssl.hpp>
#include <vector>

using namespace ssl;

namespace {
using model = simclr<mlp_encoder<>, projection_mlp<>>;

model make_model(uint64_t seed) {
  return model(mlp_encoder<>(64, {16}, seed),
               projection_mlp<>({.in_dim = 16, .hidden_dim = 12, .out_dim = 8, .batch_norm = false}, rng(seed + 1)));
}

// Two noisy views of this rank's shard of (4, 1, 8, 8) images.
std::vector<tensor<cpu>> shard_views(int rank, int step) {
  rng g(1000 + uint64_t(rank) * 17 + uint64_t(step));
  tensor<cpu> base(shape{4, 1, 8, 8});
  for (int64_t i = 0; i < base.numel(); ++i) base[i] = g.normal();
  std::vector<tensor<cpu>> v;
  for (int k = 0; k < 2; ++k) {
    tensor<cpu> x = base;
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += 0.3f * g.normal();
    v.push_back(std::move(x));
  }
  return v;
}

// The data-parallel program of one rank: 3 SGD steps. Returns the parameters, flattened, and the losses.
template <class C>
std::pair<std::vector<float>, std::vector<float>> train_replica(C& comm) {
  model m = make_model(7 + 10 * uint64_t(comm.rank()));  // a different init per rank
  dist::data_parallel dp(m, comm);
  param_list<cpu> ps;
  dp.collect(ps, "");
  sgd opt(ps, {.lr = 0.1f, .momentum = 0.9f});
  std::vector<float> losses;
  for (int s = 1; s <= 3; ++s) {
    opt.zero_grad();
    losses.push_back(dp.train_step(shard_views(comm.rank(), s)).loss);
    opt.step();
    dp.after_step({.step = s, .total_steps = 3});
  }
  std::vector<float> flat;
  for (auto& r : ps) flat.insert(flat.end(), r.p->value.data(), r.p->value.data() + r.p->value.numel());
  return {flat, losses};
}
}  // namespace

TEST_CASE("data_parallel simclr over MPI keeps the replicas bit-identical") {
  set_num_threads(1);
  dist::mpi_communicator comm;
  const int W = comm.world_size();
  auto [params, losses] = train_replica(comm);
  const auto n = int64_t(params.size());

  // Every rank's parameters and losses, gathered and compared bit for bit with rank 0's.
  std::vector<float> all_params(params.size() * size_t(W)), all_losses(losses.size() * size_t(W));
  comm.all_gather(params.data(), n, all_params.data());
  comm.all_gather(losses.data(), int64_t(losses.size()), all_losses.data());
  for (int q = 1; q < W; ++q) {
    CHECK(std::memcmp(all_params.data() + size_t(q) * params.size(), all_params.data(), params.size() * 4) == 0);
    CHECK(std::memcmp(all_losses.data() + size_t(q) * losses.size(), all_losses.data(), losses.size() * 4) == 0);
  }
  for (float l : losses) CHECK(std::isfinite(l));

  // The training moved the parameters away from rank 0's initial ones.
  model init = make_model(7);
  float moved = 0;
  size_t k = 0;
  for (auto& r : parameters(init))
    for (int64_t i = 0; i < r.p->value.numel(); ++i) moved = std::max(moved, std::abs(r.p->value[i] - params[k++]));
  CHECK(moved > 1e-4f);

  if (W == 2) {
    // The same program with 2 ranks as threads: sums of 2 values are the same bits in either
    // order, so the MPI run and the thread run agree exactly.
    std::vector<float> thread_params, thread_losses;
    dist::thread_group(2).run([&](dist::thread_communicator& tc) {
      auto [p, l] = train_replica(tc);
      if (tc.rank() == 0) thread_params = p, thread_losses = l;
    });
    CHECK(thread_params == params);
    CHECK(thread_losses == losses);
  }
}
