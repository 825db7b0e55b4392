// DenseCL on the GPU: densecl_method<vit<cuda>, projection_mlp<cuda>> + sgd<cuda> takes the same two
// training steps as the <cpu> instantiation from the same seeds (loss, gradients, parameters after
// the step; after after_step the key network and both queues with their write positions, all listed
// by collect_buffers), and the device matching, matched-key gather, token mean and its adjoint match
// the CPU reference on their own.
#include <algorithm>
#include <vector>

#include <ssl/encoders/vit.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/losses/densecl.hpp>
#include <ssl/methods/densecl.hpp>
#include <ssl/optim/sgd.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
using densecl_t = densecl_method<vit<B>, projection_mlp<B>>;

static_assert(Method<densecl_t<cuda>>);

// 28x28x1 images, patch 14 (a 2 x 2 grid, S = 4), D 32, depth 2, 2 heads; both heads 32 -> 64 -> 16
// without BN (the DenseCL necks). The matching is an argmax: where two cosines are closer than the
// backends' rounding it may go either way. At initialisation a ViT's tokens lie close together; with
// large patches and views in [-1, 1] the best and second-best cosines of every location stay
// >= 2.8e-3 apart over both steps (measured on the CPU; checked for the first step below), ~100x the
// rounding. The 7 x 7 grid (S = 49) of the device matching is tested on its own below.
template <class B>
densecl_t<B> make_densecl(uint64_t seed, vit_pool pool) {
  const projection_mlp_options h{.in_dim = 32, .hidden_dim = 64, .out_dim = 16, .layers = 2, .batch_norm = false};
  return densecl_t<B>(
      vit<B>({.image_size = 28, .patch = 14, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2, .pool = pool},
             rng(seed)),
      projection_mlp<B>(h, rng(seed).fork(1)), projection_mlp<B>(h, rng(seed).fork(2)),
      densecl_options{.queue_size = 24, .momentum = 0.9f, .temperature = 0.2f, .loss_lambda = 0.5f, .seed = 5});
}

// make_views for check_two_sgd_steps: at step s two views (B, 1, 28, 28) in [-1, 1], seeds seed + 2 s, + 1.
auto centered_views(int64_t batch, uint64_t seed) {
  return [=](int step) {
    const uint64_t s = seed + 2 * uint64_t(step);
    return std::vector<tensor<cpu>>{random(shape{batch, 1, 28, 28}, s), random(shape{batch, 1, 28, 28}, s + 1)};
  };
}

// The smallest gap, over all query locations, between the best and second-best cosine of the matching
// (query encoder on view 0, key encoder on view 1).
double match_margin(densecl_t<cpu>& m, const std::vector<tensor<cpu>>& v) {
  const tensor<cpu> qt = m.encoder().infer_tokens(v[0]), kt = m.key_encoder().infer_tokens(v[1]);
  const int64_t N = qt.dim(0), S = qt.dim(1) - 1, D = qt.dim(2);
  const tensor<cpu> qn = losses_detail::normalize_rows(ops::slice_tokens(qt, 1, S), N * S).z;
  const tensor<cpu> kn = losses_detail::normalize_rows(ops::slice_tokens(kt, 1, S), N * S).z;
  double margin = 2;
  for (int64_t r = 0; r < N * S; ++r) {
    std::vector<double> c;
    for (int64_t t = 0; t < S; ++t) {
      double d = 0;
      for (int64_t e = 0; e < D; ++e) d += double(qn[r * D + e]) * kn[((r / S) * S + t) * D + e];
      c.push_back(d);
    }
    std::sort(c.rbegin(), c.rend());
    margin = std::min(margin, c[0] - c[1]);
  }
  return margin;
}
}  // namespace

TEST_CASE("cuda: densecl_method<vit<cuda>, projection_mlp<cuda>> + sgd<cuda> steps like <cpu>, queues included") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (vit_pool pool : {vit_pool::mean, vit_pool::cls}) {
    INFO("pool " << (pool == vit_pool::mean ? "mean" : "cls"));
    auto host = make_densecl<cpu>(7, pool);
    auto dev = make_densecl<cuda>(7, pool);  // the only difference: the backend argument
    // the same matches for the first step's views, far from ties
    const auto v0 = centered_views(8, 400)(0);
    REQUIRE(match_margin(host, v0) > 2e-3);
    CHECK(dev.match(to_device(v0[0]), to_device(v0[1])) == host.match(v0[0], v0[1]));
    check_two_sgd_steps(host, dev, centered_views(8, 400), {});
    CHECK(host.pointer() == 16);
    CHECK(dev.pointer() == 16);
    CHECK(dev.dense_pointer() == 16);
    CHECK(rel_diff(dev.queue(), host.queue()) < 1e-4);
    CHECK(rel_diff(dev.dense_queue(), host.dense_queue()) < 1e-4);
    expect_close_loss(host.last_dense_loss(), dev.last_dense_loss(), "dense term");
    expect_close_loss(host.last_global_loss(), dev.last_global_loss(), "global term");
    // the ring wraps: 16 keys at 16 fill rows [16, 24) and [0, 8)
    const tensor<cpu> g = random(shape{16, 16}, 440), d = random(shape{16, 16}, 441);
    host.enqueue(g, d);
    dev.enqueue(to_device(g), to_device(d));
    CHECK(dev.pointer() == 8);
    CHECK(dev.dense_pointer() == 8);
    CHECK(rel_diff(dev.queue(), host.queue()) < 1e-5);
    CHECK(rel_diff(dev.dense_queue(), host.dense_queue()) < 1e-5);
  }
}

TEST_CASE("cuda: densecl matching, matched keys, dense loss and token mean match the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 5, S = 49, D = 24, C = 12;
  const tensor<cpu> qb = random(shape{N, S, D}, 450), kb = random(shape{N, S, D}, 451);
  const tensor<cpu> k = random(shape{N, S, C}, 452), q = random(shape{N, S, C}, 453), queue = random(shape{40, C}, 454);
  std::vector<int64_t> mh, md;
  const tensor<cpu> ph = densecl_matched_keys(qb, kb, k, &mh);
  const tensor<cuda> pd = densecl_matched_keys(to_device(qb), to_device(kb), to_device(k), &md);
  CHECK(md == mh);
  CHECK(rel_diff(pd, ph) == 0.0);  // a gather: exact
  CHECK(densecl_match(to_device(qb), to_device(kb)) == mh);
  // ties go to the lowest location on both: every key location equal
  tensor<cpu> flat(shape{1, 4, 3}, 1.0f);
  CHECK(densecl_match(to_device(flat), to_device(flat)) == std::vector<int64_t>{0, 0, 0, 0});
  // the dense term
  const densecl_dense_loss loss(0.2f);
  const auto rh = loss(q, k, qb, kb, queue);
  const auto rd = loss(to_device(q), to_device(k), to_device(qb), to_device(kb), to_device(queue));
  expect_close_loss(rh.value, to_host_scalar(rd.value), "dense loss");
  CHECK(rel_diff(rd.grad_q, rh.grad_q) < 1e-4);
  // the mean over the tokens and its adjoint (accumulated)
  CHECK(rel_diff(densecl_detail::mean_tokens(to_device(k)), densecl_detail::mean_tokens(k)) < 1e-5);
  tensor<cpu> dx = q;
  tensor<cuda> ddx = to_device(q);
  const tensor<cpu> dy = random(shape{N, C}, 455);
  densecl_detail::add_mean_backward(dx, dy);
  densecl_detail::add_mean_backward(ddx, to_device(dy));
  CHECK(rel_diff(ddx, dx) < 1e-5);
}
