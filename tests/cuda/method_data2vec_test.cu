// The library's own data2vec instantiated for the GPU: data2vec<vit<cuda>> + adamw<cuda> takes the
// same training steps as the <cpu> instantiation (loss, gradients, parameters, the EMA teacher), the
// teacher's block outputs and targets match, and data2vec_loss on the device (smooth L1 and squared
// error, rescaled) matches its CPU reference.
#include <ssl/encoders/vit.hpp>
#include <ssl/losses/data2vec.hpp>
#include <ssl/methods/data2vec.hpp>
#include <ssl/optim/adamw.hpp>

#include "loss_parity.cuh"
#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
// ViT-T/4-like but small: 28x28x1, patch 4 (49 patches), D 32, depth 4, 2 heads, a mask token.
template <class B>
data2vec<vit<B>> make_data2vec(uint64_t seed, bool head = true) {
  vit_options o{.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 4, .heads = 2};
  o.mask_token = true;
  return data2vec<vit<B>>(vit<B>(o, rng(seed)),
                          data2vec_options{.regression_head = head, .momentum_base = 0.9f, .seed = 5}, rng(seed).fork(1));
}
}  // namespace

static_assert(Method<data2vec<vit<cuda>>>);

TEST_CASE("cuda: data2vec<vit<cuda>> + adamw<cuda> steps like the <cpu> instantiation, teacher included") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (bool head : {true, false}) {
    INFO("regression head " << head);
    auto host = make_data2vec<cpu>(7, head);
    auto dev = make_data2vec<cuda>(7, head);  // the only difference: the backend argument
    // the same host-drawn masks; after_step moves both teachers (the buffers compared at the end)
    check_two_adamw_steps(host, dev, one_view(8, 1, 500), /*after_step=*/true);
    CHECK(dev.step_count() == 2);
    CHECK(dev.momentum() == host.momentum());
    expect_close_buffers(host, dev);
  }
}

TEST_CASE("cuda: vit<cuda>::infer_block_outputs and data2vec targets match the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  const auto host = make_data2vec<cpu>(3);
  const auto dev = make_data2vec<cuda>(3);
  const tensor<cpu> x = random(shape{4, 1, 28, 28}, 510, 0.0f, 1.0f);
  const auto h = host.teacher().infer_block_outputs(x, 3);
  const auto d = dev.teacher().infer_block_outputs(to_device(x), 3);
  REQUIRE(d.size() == 3);
  for (size_t k = 0; k < 3; ++k) CHECK(rel_diff(d[k], h[k]) < 1e-4);
  CHECK(rel_diff(dev.targets(to_device(x)), host.targets(x)) < 1e-4);
}

TEST_CASE("cuda: data2vec_loss on the device matches the CPU reference (smooth L1, squared error, normaliser)") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (float beta : {0.0f, 1.0f, 2.0f}) {
    INFO("beta " << beta);
    const data2vec_loss loss({.beta = beta});
    const tensor<cpu> pred = random(shape{301, 192}, 520, -3.0f, 3.0f), target = random(shape{301, 192}, 521);
    for (double normaliser : {0.0, 640.5}) {
      const auto ref = loss(pred, target, normaliser);
      const auto got = loss(to_device(pred), to_device(target), normaliser);
      CHECK(value_rel_diff(got.value, ref.value) < 1e-5);
      CHECK(rel_diff(got.grad_pred, ref.grad_pred) < 1e-5);
    }
  }
  // targets with LN per layer and of the mean
  const data2vec_loss ln({.layer_norm_target_layer = true});
  std::vector<tensor<cpu>> layers;
  std::vector<tensor<cuda>> device_layers;
  for (uint64_t k = 0; k < 3; ++k) {
    layers.push_back(random(shape{5, 50, 32}, 530 + k, -4.0f, 4.0f));
    device_layers.push_back(to_device(layers.back()));
  }
  CHECK(rel_diff(ln.targets(device_layers), ln.targets(layers)) < 1e-5);
}
