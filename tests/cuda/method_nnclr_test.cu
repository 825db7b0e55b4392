// NNCLR on the device: the loss and the support set's lookup against ssl::nnclr and the CPU
// nnclr_support_set, and nnclr_method<convnet_s<cuda>, projection_mlp<cuda>> + sgd<cuda> taking the
// same three training steps as the <cpu> instantiation: the first with each embedding its own
// neighbour, the next two with neighbours from the support set (which wraps in the third). Compared:
// loss, every gradient, every parameter after the optimizer steps, and every buffer (BN statistics,
// the support set's rows, fill count and write position).
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/losses/nnclr.hpp>
#include <ssl/methods/nnclr.hpp>
#include <ssl/optim/sgd.hpp>

#include "loss_parity.cuh"
#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

TEST_CASE("cuda: NNCLR loss and support-set lookup match ssl::nnclr and nnclr_support_set<cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [N, D, M, tau] : {std::tuple{8, 16, 20, 0.1f}, std::tuple{256, 128, 4096, 0.2f}}) {
    INFO("N " << N << " D " << D << " M " << M << " tau " << tau);
    const tensor<cpu> nn = random(shape{N, D}, 70), p = random(shape{N, D}, 71);
    const nnclr_result ref = nnclr(tau)(nn, p);
    const auto got = nnclr(tau)(to_device(nn), to_device(p));
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_p, ref.grad_p) < (N > 100 ? 1e-3 : 1e-4));
    // the support set: filled by two enqueues (the second wraps), then looked up
    nnclr_support_set<cpu> host_set(M, D);
    nnclr_support_set<cuda> dev_set(M, D);
    for (uint64_t s = 0; s < 2; ++s) {
      const tensor<cpu> z = random(shape{M * 3 / 4, D}, 72 + s);
      host_set.enqueue(z);
      dev_set.enqueue(to_device(z));
    }
    CHECK(dev_set.filled() == host_set.filled());
    CHECK(dev_set.pointer() == host_set.pointer());
    CHECK(rel_diff(dev_set.rows(), host_set.rows()) < 1e-6);
    const tensor<cpu> q = random(shape{N, D}, 74);
    std::vector<int64_t> host_idx, dev_idx;
    const tensor<cpu> host_nn = host_set.nearest(q, &host_idx);
    const tensor<cuda> dev_nn = dev_set.nearest(to_device(q), &dev_idx);
    CHECK(dev_idx == host_idx);
    CHECK(rel_diff(dev_nn, host_nn) < 1e-6);
  }
  CHECK_THROWS_AS(nnclr_support_set<cuda>(4, 3).nearest(ops::full(shape{2, 3}, 1.0f)), value_error);  // empty
}

namespace {
template <class B>
nnclr_method<convnet_s<B>, projection_mlp<B>> make_nnclr(uint64_t seed) {
  return {convnet_s<B>(1, rng(seed)),
          projection_mlp<B>({.in_dim = 256, .hidden_dim = 64, .out_dim = 32}, rng(seed).fork(1)),
          projection_mlp<B>({.in_dim = 32, .hidden_dim = 64, .out_dim = 32}, rng(seed).fork(2)),
          {.support_size = 12, .temperature = 0.2f}};
}

// At step s: two views of 8 images, seeds 800 + 10 s + v.
std::vector<tensor<cpu>> views_of(int step) {
  std::vector<tensor<cpu>> views;
  for (int v = 0; v < 2; ++v) views.push_back(random(shape{8, 1, 28, 28}, 800 + 10 * uint64_t(step) + uint64_t(v), 0.0f, 1.0f));
  return views;
}
}  // namespace

static_assert(Method<nnclr_method<convnet_s<cuda>, projection_mlp<cuda>>>);

TEST_CASE("cuda: nnclr_method<convnet_s<cuda>, projection_mlp<cuda>> (support set, first-step self neighbours) steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_nnclr<cpu>(9);
  auto dev = make_nnclr<cuda>(9);
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  const sgd_options so{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
  sgd host_opt(ps.host, so);
  sgd dev_opt(ps.dev, so);
  parity_steps_options o{.steps = 3, .bn_fed_biases = {"projector.0.bias", "predictor.0.bias"}, .after_step_total = 10};
  o.after_train_step = [&](int step) {
    CHECK(dev.last_step_used_support() == host.last_step_used_support());
    CHECK(host.last_step_used_support() == (step > 0));
  };
  o.end_of_step = [&](int step) {
    CHECK(dev.support_set().filled() == host.support_set().filled());
    CHECK(dev.support_set().pointer() == host.support_set().pointer());
    CHECK(host.support_set().filled() == std::min<int64_t>(12, 8 * (step + 1)));  // 8 rows a step, 12 at most
    expect_close_buffers(host, dev);
  };
  run_parity_steps(host, dev, ps, host_opt, dev_opt, views_of, o);
}
