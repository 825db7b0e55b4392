// The library's own DINO instantiated for the GPU: dino_method<E<cuda>, dino_head<cuda>> + sgd<cuda>
// takes the same training steps as the <cpu> instantiation with multi-crop (2 global 28x28 + 2 local
// 12x12 crops), KoLeo (DINOv2) and a frozen last layer in the first step: loss, every gradient, every
// parameter, then after_step's center update and teacher EMA (all buffers compared). Two encoders:
// ConvNet-S (BN, teacher in train mode) and a small ViT (teacher in eval mode; resized position table
// for the local crops).
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/heads/dino_head.hpp>
#include <ssl/methods/dino.hpp>
#include <ssl/optim/sgd.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
dino_options test_options() {
  dino_options o;
  o.teacher_temperature_start = 0.04f;
  o.teacher_temperature = 0.07f;
  o.teacher_warmup_steps = 2;
  o.freeze_last_layer_steps = 1;
  o.koleo_weight = 0.1f;
  return o;
}

dino_head_options head_options(int64_t in_dim) {
  return {.in_dim = in_dim, .hidden_dim = 64, .bottleneck_dim = 32, .out_dim = 128, .layers = 3};
}

template <class B>
dino_method<convnet_s<B>, dino_head<B>> make_convnet_dino(uint64_t seed) {
  return {convnet_s<B>(1, rng(seed)), dino_head<B>(head_options(256), rng(seed).fork(1)), test_options()};
}

template <class B>
dino_method<vit<B>, dino_head<B>> make_vit_dino(uint64_t seed) {
  return {vit<B>({.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2}, rng(seed)),
          dino_head<B>(head_options(32), rng(seed).fork(1)), test_options()};
}

// Two SGD steps on the same crops; gradients, values and (after after_step) every buffer compared.
template <class HostMethod, class DeviceMethod>
void check_dino_steps(HostMethod& host, DeviceMethod& dev) {
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  expect_close_buffers(host, dev);  // teacher = student copy, center 0
  const sgd_options o{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
  sgd host_opt(ps.host, o);
  sgd dev_opt(ps.dev, o);
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    std::vector<tensor<cpu>> views;
    for (int v = 0; v < 4; ++v) {
      const int64_t size = v < 2 ? 28 : 12;  // 2 global crops, then 2 local crops
      views.push_back(random(shape{8, 1, size, size}, 500 + 10 * uint64_t(step) + uint64_t(v), 0.0f, 1.0f));
    }
    const std::vector<tensor<cuda>> dev_views = upload_views(views);
    host_opt.zero_grad();
    dev_opt.zero_grad();
    const float loss = host.train_step(views).loss;
    const float dev_loss = dev.train_step(dev_views).loss;
    expect_close_loss(loss, dev_loss);
    expect_close_loss(host.last_dino_loss(), dev.last_dino_loss(), "last_dino_loss");
    expect_close_gradients(ps);
    host_opt.step();
    dev_opt.step();
    expect_close_values(ps);
    const step_info info{.step = step + 1, .total_steps = 10, .epoch = 0};
    host.after_step(info);
    dev.after_step(info);
    CHECK(dev.momentum() == host.momentum());
    expect_close_buffers(host, dev);  // center, teacher weights (EMA) and BN statistics
  }
}
}  // namespace

static_assert(Method<dino_method<convnet_s<cuda>, dino_head<cuda>>>);
static_assert(Method<dino_method<vit<cuda>, dino_head<cuda>>>);

TEST_CASE("cuda: dino_method<convnet_s<cuda>, dino_head<cuda>> steps like the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_convnet_dino<cpu>(3);
  auto dev = make_convnet_dino<cuda>(3);
  check_dino_steps(host, dev);
}

TEST_CASE("cuda: dino_method<vit<cuda>, dino_head<cuda>> (multi-crop, resized position table) steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_vit_dino<cpu>(4);
  auto dev = make_vit_dino<cuda>(4);
  check_dino_steps(host, dev);
}
