// The library's own SwAV instantiated for the GPU: swav_method<convnet_s<cuda>, projection_mlp<cuda>>
// + sgd<cuda> takes the same training steps as the <cpu> instantiation on multi-crop (2 crops of
// 28x28, 2 of 12x12): prototypes normalised on the device, Sinkhorn-Knopp codes (device kernels),
// the swapped-prediction cross-entropy, prototypes frozen in the first step; after_step fills the
// queue (device copies), whose rows join the second step's Sinkhorn-Knopp. Compared: loss, every
// gradient, every parameter after the optimizer steps, and every buffer (BN statistics, the queue,
// its counters, the step count).
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/swav.hpp>
#include <ssl/optim/sgd.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
swav_method<convnet_s<B>, projection_mlp<B>> make_swav(uint64_t seed) {
  return {convnet_s<B>(1, rng(seed)),
          projection_mlp<B>({.in_dim = 256, .hidden_dim = 64, .out_dim = 32}, rng(seed).fork(1)),
          swav_prototypes<B>(32, 40, rng(seed).fork(2)),
          {.freeze_prototypes_steps = 1, .queue_length = 8}};
}

// At step s: 2 crops of 28x28, then 2 of 12x12, seeds 700 + 10 s + v.
std::vector<tensor<cpu>> crops(int step) {
  std::vector<tensor<cpu>> views;
  for (int v = 0; v < 4; ++v) {
    const int64_t size = v < 2 ? 28 : 12;
    views.push_back(random(shape{8, 1, size, size}, 700 + 10 * uint64_t(step) + uint64_t(v), 0.0f, 1.0f));
  }
  return views;
}
}  // namespace

static_assert(Method<swav_method<convnet_s<cuda>, projection_mlp<cuda>>>);

TEST_CASE("cuda: swav_method<convnet_s<cuda>, projection_mlp<cuda>> (multi-crop, queue, frozen prototypes) steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_swav<cpu>(8);
  auto dev = make_swav<cuda>(8);
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  const sgd_options so{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
  sgd host_opt(ps.host, so);
  sgd dev_opt(ps.dev, so);
  parity_steps_options o{.after_step_total = 10};
  o.after_train_step = [&](int step) {
    CHECK(dev.prototypes().frozen() == (step == 0));
    CHECK(dev.last_step_used_queue() == host.last_step_used_queue());
    CHECK(host.last_step_used_queue() == (step == 1));  // 8 rows after the first step: full
  };
  o.end_of_step = [&](int) {
    CHECK(dev.queue_filled() == host.queue_filled());
    CHECK(dev.step_count() == host.step_count());
    expect_close_buffers(host, dev);
  };
  run_parity_steps(host, dev, ps, host_opt, dev_opt, crops, o);
}
