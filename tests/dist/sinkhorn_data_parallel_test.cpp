// DINOv2's distributed Sinkhorn-Knopp: the targets each rank computes for its rows equal those of
// one sinkhorn_knopp over all ranks' rows (uneven and empty shards included), and a data-parallel
// DINO with Sinkhorn-Knopp centering then trains as one process on the global batch, and so does
// SwAV (its codes by distributed_sinkhorn).
#include <ssl/dist/sync_sinkhorn_knopp.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/methods/dino.hpp>
#include <ssl/methods/swav.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

TEST_CASE("sinkhorn_group_of: each rank's targets are its rows of the global Sinkhorn-Knopp") {
  const int64_t K = 7;
  const std::vector<int64_t> shard_rows = {5, 0, 3};  // rank 1 holds no rows, still joins the reductions
  const int64_t R = 8;
  rng g(4);
  tensor<cpu> t(shape{R, K});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = 3.0f * g.normal() + (i % K == 2 ? 4.0f : 0.0f);  // a dominant prototype
  const tensor<cpu> whole = sinkhorn_knopp(t, 0.1f, 3);
  std::vector<tensor<cpu>> parts(3);
  thread_group(3).run([&](thread_communicator& comm) {
    const int r = comm.rank();
    int64_t first = 0;
    for (int q = 0; q < r; ++q) first += shard_rows[size_t(q)];
    tensor<cpu> mine(shape{shard_rows[size_t(r)], K});
    std::copy_n(t.data() + first * K, mine.numel(), mine.data());
    const sinkhorn_group grp = sinkhorn_group_of(comm);
    parts[size_t(r)] = sinkhorn_knopp(mine, 0.1f, 3, true, &grp);
  });
  int64_t at = 0;
  for (int r = 0; r < 3; ++r) {
    REQUIRE(parts[size_t(r)].shape() == (shape{shard_rows[size_t(r)], K}));
    for (int64_t i = 0; i < parts[size_t(r)].numel(); ++i) CHECK(parts[size_t(r)][i] == Approx(whole[at + i]).margin(1e-6));
    at += parts[size_t(r)].numel();
  }
  // and a rank-local Sinkhorn-Knopp of rank 0's rows is not the global one
  tensor<cpu> first_rows(shape{5, K});
  std::copy_n(t.data(), first_rows.numel(), first_rows.data());
  const tensor<cpu> local = sinkhorn_knopp(first_rows, 0.1f, 3);
  float gap = 0;
  for (int64_t i = 0; i < local.numel(); ++i) gap = std::max(gap, std::fabs(local[i] - whole[i]));
  CHECK(gap > 0.05f);
}

TEST_CASE("sinkhorn_knopp: a sinkhorn_group needs both reductions; empty rows need a group") {
  tensor<cpu> t(shape{4, 3}, 0.5f);
  sinkhorn_group half;
  half.sum = [](float*, int64_t) {};
  CHECK_THROWS_AS(sinkhorn_knopp(t, 0.1f, 3, true, &half), value_error);
  CHECK_THROWS_AS(sinkhorn_knopp(tensor<cpu>(shape{0, 3}), 0.1f), shape_error);
}

namespace {
/// A tiny ViT DINO with Sinkhorn-Knopp targets; with `ibot`, DINOv2's iBOT term and masks too
/// (KoLeo off: it stays per rank, as in DINOv2's code).
auto make_dinov2(uint64_t seed, bool ibot) {
  dino_options o = dino_options::dinov2();
  o.koleo_weight = 0.0f;
  o.momentum_base = 0.9f;
  o.seed = 7;
  if (!ibot) o.ibot_weight = 0.0f;
  return dino_method<vit<>>(
      vit<>({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mask_token = true}, rng(seed)),
      dino_head<>({.in_dim = 8, .hidden_dim = 12, .bottleneck_dim = 6, .out_dim = 10}, rng(seed + 1)), o);
}
tensor<cpu> images(int64_t first, int64_t n, uint64_t seed) {
  rng g(seed);
  tensor<cpu> all(shape{12, 1, 8, 8});
  for (int64_t i = 0; i < all.numel(); ++i) all[i] = g.uniform();
  tensor<cpu> out(shape{n, 1, 8, 8});
  std::copy_n(all.data() + first * 64, n * 64, out.data());
  return out;
}
std::vector<float> flat_grads(param_list<cpu>& ps) {
  std::vector<float> g;
  for (auto& r : ps) g.insert(g.end(), r.p->grad.data(), r.p->grad.data() + r.p->grad.numel());
  return g;
}
}  // namespace

/// Whose rows a data-parallel Sinkhorn-Knopp balances: the default (data_parallel's batch gather),
/// sync_sinkhorn_knopp (the communicator's all-reduce) or unsync_sinkhorn_knopp (each rank's own).
enum class sk_mode { automatic, all_reduce, local };

template <class M>
void set_sk_mode(M& m, thread_communicator& comm, sk_mode mode) {
  if (mode == sk_mode::all_reduce) sync_sinkhorn_knopp(m, comm);
  if (mode == sk_mode::local) unsync_sinkhorn_knopp(m);
}

TEST_CASE("dino / dinov2 under data_parallel: one step of 2 ranks is the single-process step (global Sinkhorn-Knopp)") {
  for (bool ibot : {false, true}) {
    CAPTURE(ibot);
    auto single = make_dinov2(2, ibot);
    const float loss = single.train_step({images(0, 12, 1), images(0, 12, 2)}).loss;
    param_list<cpu> ps;
    single.collect(ps, "");
    const std::vector<float> grad = flat_grads(ps);
    float largest = 0;
    for (float v : grad) largest = std::max(largest, std::fabs(v));
    float gap[3] = {0, 0, 0};  // largest gradient difference to the single process, per mode
    for (sk_mode mode : {sk_mode::automatic, sk_mode::all_reduce, sk_mode::local}) {
      CAPTURE(int(mode));
      std::vector<float> losses(2);
      std::vector<std::vector<float>> grads(2);
      std::vector<int> synced(2);
      thread_group(2).run([&](thread_communicator& comm) {
        auto m = make_dinov2(2, ibot);
        set_sk_mode(m, comm, mode);
        data_parallel dp(m, comm);  // places the replica: its iBOT masks are its rows of the global draw
        const int64_t r = comm.rank();
        synced[size_t(r)] = m.sinkhorn_synchronized();
        losses[size_t(r)] = dp.train_step({images(6 * r, 6, 1), images(6 * r, 6, 2)}).loss;
        param_list<cpu> mine;
        m.collect(mine, "");
        grads[size_t(r)] = flat_grads(mine);
      });
      CHECK(grads[1] == grads[0]);
      CHECK(synced[0] == (mode != sk_mode::local));
      gap[int(mode)] = max_abs_difference(grads[0], grad);
      if (mode != sk_mode::local) CHECK(losses[0] == Approx(loss).epsilon(1e-6));
    }
    // the gradients reach 3e4 here (tiny weight-normed head): the synced runs are off by rounding,
    // each rank balancing its own rows (near-uniform logits at init) by far more
    CAPTURE(gap[0], gap[1], gap[2], largest);
    CHECK(gap[0] < 1e-5f * largest);
    CHECK(gap[1] < 1e-5f * largest);
    CHECK(gap[2] > 30 * std::max(gap[0], gap[1]));
  }
}

TEST_CASE("dino with Sinkhorn-Knopp under data_parallel: two epochs follow the single process") {
  for (bool ibot : {false, true}) {
    CAPTURE(ibot);
    const auto d = tiny_data(8);
    auto single = make_dinov2(2, ibot);
    const float lr = 0.005f;  // as dino_data_parallel_test: keeps rounding differences from growing
    const auto reference = train_single(single, d, 12, lr);
    if (ibot) CHECK(single.last_ibot_loss() > 0.0f);  // the iBOT term was live
    auto run = [&](sk_mode mode) {
      return train_ranks(2, 6, d, [&](thread_communicator& comm) {
        auto m = make_dinov2(comm.rank() == 0 ? 2 : 3, ibot);  // rank 1's init is replaced by rank 0's broadcast
        set_sk_mode(m, comm, mode);
        CHECK(m.sinkhorn_synchronized() == (mode == sk_mode::all_reduce));  // the gather comes with data_parallel
        return m;
      }, lr);
    };
    // Sinkhorn-Knopp's sums cross the ranks as floats (the single process keeps doubles): rounding
    // differences of ~1e-7 per step, which 8 steps through the tiny head's large gradients grow to
    // ~1e-4; per-rank Sinkhorn-Knopp lands an order of magnitude further away.
    float gaps[2] = {0, 0};
    for (sk_mode mode : {sk_mode::automatic, sk_mode::all_reduce}) {
      CAPTURE(int(mode));
      const auto synced = run(mode);
      CHECK(synced[1].params == synced[0].params);
      CHECK(synced[1].buffers == synced[0].buffers);
      gaps[int(mode)] = max_abs_difference(synced[0].params, reference);
      CHECK(gaps[int(mode)] < 5e-4f);
    }
    const float local_gap = max_abs_difference(run(sk_mode::local)[0].params, reference);
    CAPTURE(gaps[0], gaps[1], local_gap);
    CHECK(local_gap > 10 * std::max(gaps[0], gaps[1]));
  }
}

namespace {
/// A tiny ViT SwAV without BatchNorm (the projector's statistics would otherwise be per rank),
/// prototypes trained from the first step.
auto make_swav(uint64_t seed) {
  return swav_method<vit<>>(
      vit<>({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2}, rng(seed)),
      projection_mlp<>({.in_dim = 8, .hidden_dim = 12, .out_dim = 6, .batch_norm = false}, rng(seed + 1)),
      swav_prototypes<>(6, 10, rng(seed + 2)), {.freeze_prototypes_steps = 0});
}
}  // namespace

TEST_CASE("swav under data_parallel: one step of 2 ranks is the single-process step (distributed_sinkhorn)") {
  auto single = make_swav(2);
  const float loss = single.train_step({images(0, 12, 1), images(0, 12, 2)}).loss;
  param_list<cpu> ps;
  single.collect(ps, "");
  const std::vector<float> grad = flat_grads(ps);
  float largest = 0;
  for (float v : grad) largest = std::max(largest, std::fabs(v));
  // the codes of a rank's rows balanced over its own 6 rows only: another loss
  const float local = make_swav(2).train_step({images(0, 6, 1), images(0, 6, 2)}).loss;
  // data_parallel's batch gather makes the Sinkhorn-Knopp global by itself; sync_sinkhorn_knopp
  // (the communicator's all-reduce) does the same; unsync_sinkhorn_knopp keeps each rank's rows
  float gaps[3] = {0, 0, 0}, loss_gaps[3] = {0, 0, 0};  // to the single process, per mode
  for (sk_mode mode : {sk_mode::automatic, sk_mode::all_reduce, sk_mode::local}) {
    CAPTURE(int(mode));
    std::vector<float> losses(2), own(2);
    std::vector<int> synced(2);
    std::vector<std::vector<float>> grads(2);
    thread_group(2).run([&](thread_communicator& comm) {
      auto m = make_swav(2);
      set_sk_mode(m, comm, mode);
      CHECK(m.sinkhorn_synchronized() == (mode == sk_mode::all_reduce));
      const int64_t r = comm.rank();
      {
        data_parallel dp(m, comm);
        synced[size_t(r)] = m.sinkhorn_synchronized();
        losses[size_t(r)] = dp.train_step({images(6 * r, 6, 1), images(6 * r, 6, 2)}).loss;
      }
      param_list<cpu> mine;
      m.collect(mine, "");
      grads[size_t(r)] = flat_grads(mine);
      if (mode == sk_mode::automatic) {  // data_parallel gone: local again
        CHECK_FALSE(m.sinkhorn_synchronized());
        own[size_t(r)] = m.train_step({images(0, 6, 1), images(0, 6, 2)}).loss;
      }
    });
    CHECK(grads[1] == grads[0]);
    CHECK(synced[0] == (mode != sk_mode::local));
    gaps[int(mode)] = max_abs_difference(grads[0], grad);
    loss_gaps[int(mode)] = std::abs(losses[0] - loss);
    if (mode == sk_mode::local) {
      // each rank's rows balanced alone; the reported loss is the mean over the ranks
      const float local_1 = make_swav(2).train_step({images(6, 6, 1), images(6, 6, 2)}).loss;
      CHECK(losses[0] == Approx(0.5f * (local + local_1)).epsilon(1e-6));
    }
    if (mode == sk_mode::automatic) CHECK(own[0] == Approx(local).epsilon(1e-6));
  }
  // the synced runs differ from the single process by rounding only, the per-rank codes by far more
  CAPTURE(gaps[0], gaps[1], gaps[2], loss_gaps[0], loss_gaps[1], loss_gaps[2], largest, loss, local);
  CHECK(std::max(gaps[0], gaps[1]) < 1e-6f * largest);
  CHECK(gaps[2] > 30 * std::max(gaps[0], gaps[1]));
  CHECK(loss_gaps[2] > 10 * std::max(loss_gaps[0], loss_gaps[1]));
  CHECK(std::abs(local - loss) > 1e-3f);
}

TEST_CASE("set_sinkhorn_group and the batch gather: half a group and a wrong gather are errors") {
  auto m = make_swav(2);
  sinkhorn_group half;
  half.sum = [](float*, int64_t) {};
  CHECK_THROWS_AS(m.set_sinkhorn_group(half), value_error);
  CHECK_THROWS_WITH(m.set_sinkhorn_group(half), Catch::Contains("needs both sum and max"));
  CHECK_FALSE(m.sinkhorn_synchronized());
  // a gather that returns the wrong shape, under W = 2: named as the gather's fault
  m.set_replica(0, 2);
  m.set_batch_gather([](const tensor<cpu>& t) { return tensor<cpu>(shape{2, t.dim(1) + 1}); });
  CHECK(m.sinkhorn_synchronized());
  CHECK_THROWS_WITH(m.train_step({images(0, 6, 1), images(0, 6, 2)}), Catch::Contains("batch gather returned"));
  m.set_sinkhorn_group({});  // local rows: the gather is not used
  CHECK_FALSE(m.sinkhorn_synchronized());
  CHECK(std::isfinite(m.train_step({images(0, 6, 1), images(0, 6, 2)}).loss));
  m.set_sinkhorn_automatic();
  CHECK(m.sinkhorn_synchronized());
}
