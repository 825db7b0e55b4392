// Barlow Twins and VICReg under data_parallel: the loss is taken over every rank's embeddings (as
// VICReg's code gathers them from all GPUs), so W ranks of batch B train exactly as one process of
// batch W B; with BatchNorm in the projector that holds with dist::sync_batch_norm (Barlow Twins'
// SyncBN). The loss of each rank's own rows alone is another run.
#include <ssl/dist/sync_batch_norm.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/joint_embedding.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
template <class L>
using tiny_joint = joint_embedding<mlp_encoder<>, projection_mlp<>, L>;

template <class L>
tiny_joint<L> make_joint(uint64_t seed, L loss, bool bn = false) {
  return tiny_joint<L>(mlp_encoder<>(36, {24, 16}, seed),
                       projection_mlp<>({.in_dim = 16, .hidden_dim = 16, .out_dim = 8, .layers = 3, .batch_norm = bn},
                                        rng(seed + 1)),
                       std::move(loss));
}
/// A joint-embedding method data_parallel cannot give the gather: each rank's loss over its own rows.
template <class L>
struct local_joint : tiny_joint<L> {
  explicit local_joint(tiny_joint<L> m) : tiny_joint<L>(std::move(m)) {}
  void set_batch_gather() = delete;
};

// lr 0.005: at 0.02 the weights grow 6-fold in 8 steps and rounding differences of the first step
// (4e-7) grow past 1e-4
template <class L>
void expect_single_process_run(L loss, bool bn) {
  const auto d = tiny_data();
  auto single = make_joint(5, loss, bn);
  const auto reference = train_single(single, d, 12, 0.005f);
  const auto ranks = train_ranks(
      2, 6, d,
      [&](thread_communicator& comm) {
        auto m = make_joint(comm.rank() == 0 ? 5 : 8, loss, bn);
        if (bn) sync_batch_norm(m.projector(), comm);
        return m;
      },
      0.005f);
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  const auto local = train_ranks(
      2, 6, d,
      [&](thread_communicator& comm) {
        auto m = local_joint<L>(make_joint(5, loss, bn));
        if (bn) sync_batch_norm(m.projector(), comm);
        return m;
      },
      0.005f);
  CHECK(local[1].params == local[0].params);
  CHECK(max_abs_difference(local[0].params, reference) > 1e-4f);
}
}  // namespace

TEST_CASE("barlow_twins under data_parallel: the loss over the global batch is the single-process run") {
  SECTION("no BatchNorm") { expect_single_process_run(barlow_twins(0.02f), false); }
  SECTION("projector BatchNorm synchronised (SyncBN)") { expect_single_process_run(barlow_twins(0.02f), true); }
}

TEST_CASE("vicreg under data_parallel: the loss over the global batch is the single-process run") {
  expect_single_process_run(vicreg(), false);
}
