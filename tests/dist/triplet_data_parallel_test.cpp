// Triplet mining under data_parallel: every rank mines over the embeddings of the global batch
// (pseudo-labels are global image indices), so W ranks of batch B train exactly as one process of
// batch W B; mining within each rank's batch alone is another run.
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/triplet.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
using tiny_triplet = triplet_method<mlp_encoder<>, projection_mlp<>>;
tiny_triplet make_triplet(uint64_t seed, triplet_strategy strategy = triplet_strategy::semi_hard) {
  return tiny_triplet(mlp_encoder<>(36, {24, 16}, seed),
                      projection_mlp<>({.in_dim = 16, .hidden_dim = 16, .out_dim = 8, .batch_norm = false}, rng(seed + 1)),
                      triplet_mining(strategy, 0.3f, triplet_distance::cosine));
}
/// A triplet method data_parallel cannot give the gather: each rank mines its own rows only.
struct local_triplet : tiny_triplet {
  explicit local_triplet(tiny_triplet m) : tiny_triplet(std::move(m)) {}
  void set_batch_gather() = delete;
};
}  // namespace

TEST_CASE("triplet under data_parallel: mining over the global batch is the single-process run") {
  for (auto strategy : {triplet_strategy::semi_hard, triplet_strategy::batch_all, triplet_strategy::batch_hard}) {
    CAPTURE(int(strategy));
    const auto d = tiny_data();
    auto single = make_triplet(5, strategy);
    const auto reference = train_single(single, d, 12);
    const auto ranks = train_ranks(2, 6, d, [&](thread_communicator& comm) {
      auto m = make_triplet(comm.rank() == 0 ? 5 : 8, strategy);
      return m;
    });
    CHECK(ranks[1].params == ranks[0].params);
    CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
    const auto local = train_ranks(2, 6, d, [&](thread_communicator&) { return local_triplet(make_triplet(5, strategy)); });
    CHECK(local[1].params == local[0].params);
    CHECK(max_abs_difference(local[0].params, reference) > 1e-4f);
  }
}

TEST_CASE("triplet data-parallel hooks: pseudo-labels are global indices; bad labels and gathers are named") {
  auto m = make_triplet(5);
  CHECK_FALSE(m.mines_across_ranks());
  m.set_replica(1, 2);
  CHECK_FALSE(m.mines_across_ranks());  // no gather: mines its own rows
  tensor<cpu> x(shape{3, 36}, 0.5f);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i % 7) * 0.1f;
  m.set_batch_gather([](const tensor<cpu>& t) { return t; });  // forgot the other rank
  CHECK(m.mines_across_ranks());
  CHECK_THROWS_AS(m.train_step({x, x}), shape_error);
  const std::vector<int64_t> too_large{int64_t(1) << 25, 0, 1};
  CHECK_THROWS_AS(m.train_step({x}, too_large), value_error);
  thread_group(1).run([&](thread_communicator& comm) {
    data_parallel dp(m, comm);
    CHECK_FALSE(m.mines_across_ranks());  // one rank
  });
  CHECK_FALSE(m.mines_across_ranks());
  CHECK(std::isfinite(m.train_step({x, x}).loss));
}
