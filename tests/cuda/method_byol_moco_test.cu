// BYOL, SimSiam, MoCo v2, MoCo v3, Barlow Twins and VICReg through the library's own classes on the GPU: each method
// built from convnet_s<cuda> + projection_mlp<cuda> (+ prediction_mlp<cuda>) with sgd<cuda> takes
// the same two training steps as its <cpu> instantiation from the same seeds: loss, gradients,
// parameters after the step, and after after_step the EMA teachers (weights and BN statistics),
// MoCo v2's queue and its write position (all listed by collect_buffers).
#include <string>
#include <vector>

#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/byol.hpp>
#include <ssl/methods/joint_embedding.hpp>
#include <ssl/methods/moco.hpp>
#include <ssl/optim/sgd.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
using byol_t = byol_method<convnet_s<B>, projection_mlp<B>, prediction_mlp<B>>;
template <class B>
using simsiam_t = simsiam_method<convnet_s<B>, projection_mlp<B>, prediction_mlp<B>>;
template <class B>
using moco_v2_t = moco_v2_method<convnet_s<B>, projection_mlp<B>>;
template <class B>
using moco_v3_t = moco_v3_method<convnet_s<B>, projection_mlp<B>, prediction_mlp<B>>;

static_assert(Method<byol_t<cuda>> && Method<simsiam_t<cuda>> && Method<moco_v2_t<cuda>> && Method<moco_v3_t<cuda>>);

// ConvNet-S features are 256-d; projections 64-d; predictors 64 -> 128 -> 64.
template <class B>
projection_mlp<B> projector(uint64_t seed) {
  return projection_mlp<B>({.in_dim = 256, .hidden_dim = 256, .out_dim = 64}, rng(seed).fork(1));
}
template <class B>
prediction_mlp<B> predictor(uint64_t seed) {
  return prediction_mlp<B>({.in_dim = 64, .hidden_dim = 128, .out_dim = 64}, rng(seed).fork(2));
}

template <class B>
byol_t<B> make_byol(uint64_t seed) {
  return byol_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed), predictor<B>(seed), {.tau_base = 0.9f});
}
template <class B>
simsiam_t<B> make_simsiam(uint64_t seed) {
  return simsiam_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed), predictor<B>(seed));
}
template <class B>
moco_v2_t<B> make_moco_v2(uint64_t seed) {  // 16 images per step: BN over 2 shuffled groups of 8
  return moco_v2_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed),
                      {.queue_size = 64, .momentum = 0.9f, .bn_groups = 2, .seed = 5});
}
template <class B>
moco_v3_t<B> make_moco_v3(uint64_t seed) {
  return moco_v3_t<B>(convnet_s<B>(1, rng(seed)), projector<B>(seed), predictor<B>(seed), {.momentum_base = 0.9f},
                      moco_v3(0.5f));
}
}  // namespace

TEST_CASE("cuda: byol_method<convnet_s<cuda>, projection_mlp<cuda>, prediction_mlp<cuda>> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_byol<cpu>(7);
  auto dev = make_byol<cuda>(7);
  check_two_sgd_steps(host, dev, two_views(8, 400), {"projector.0.bias", "predictor.0.bias"});
  CHECK(dev.tau() == host.tau());
  CHECK(dev.target_encoder().bn(0).num_batches_tracked() == 2);
}

TEST_CASE("cuda: simsiam_method<convnet_s<cuda>, ...> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_simsiam<cpu>(8);
  auto dev = make_simsiam<cuda>(8);
  check_two_sgd_steps(host, dev, two_views(8, 410), {"projector.0.bias", "predictor.0.bias"});
}

TEST_CASE("cuda: moco_v2_method<convnet_s<cuda>, projection_mlp<cuda>> steps like <cpu>, queue included") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_moco_v2<cpu>(9);
  auto dev = make_moco_v2<cuda>(9);
  check_two_sgd_steps(host, dev, two_views(16, 420), {"head.0.bias"});
  CHECK(host.pointer() == 32);
  CHECK(dev.pointer() == 32);
  CHECK(rel_diff(dev.queue(), host.queue()) < 1e-4);
  CHECK(dev.key_permutation(16) == host.key_permutation(16));
  // the keys of a batch (shuffle-BN in 2 groups, unshuffled) as train_step computes them
  const tensor<cpu> x = random(shape{16, 1, 28, 28}, 430, 0.0f, 1.0f);
  CHECK(rel_diff(dev.compute_keys(to_device(x)), host.compute_keys(x)) < 1e-4);
  // the ring buffer wraps: 24 keys at 32 fill rows [32, 56), the next 24 rows [56, 64) and [0, 16)
  for (int64_t s = 0; s < 2; ++s) {
    const tensor<cpu> k = random(shape{24, 64}, 440 + uint64_t(s));
    host.enqueue(k);
    dev.enqueue(to_device(k));
  }
  CHECK(host.pointer() == 16);
  CHECK(dev.pointer() == 16);
  CHECK(rel_diff(dev.queue(), host.queue()) < 1e-5);
}

TEST_CASE("cuda: moco_v3_method<convnet_s<cuda>, projection_mlp<cuda>, prediction_mlp<cuda>> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_moco_v3<cpu>(10);
  auto dev = make_moco_v3<cuda>(10);
  check_two_sgd_steps(host, dev, two_views(8, 450), {"projector.0.bias", "predictor.0.bias"});
  CHECK(dev.momentum() == host.momentum());
}

namespace {
// Barlow Twins / VICReg: a 3-layer 256 -> 128 -> 128 -> 128 projector (BN + ReLU after the first two)
template <class L, class B>
joint_embedding<convnet_s<B>, projection_mlp<B>, L> make_joint(uint64_t seed, L loss) {
  return joint_embedding<convnet_s<B>, projection_mlp<B>, L>(
      convnet_s<B>(1, rng(seed)),
      projection_mlp<B>({.in_dim = 256, .hidden_dim = 128, .out_dim = 128, .layers = 3}, rng(seed).fork(1)),
      std::move(loss));
}
}  // namespace

TEST_CASE("cuda: barlow_twins_method / vicreg_method<convnet_s<cuda>, projection_mlp<cuda>> step like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  static_assert(Method<barlow_twins_method<convnet_s<cuda>, projection_mlp<cuda>>> &&
                Method<vicreg_method<convnet_s<cuda>, projection_mlp<cuda>>>);
  {
    auto host = make_joint<barlow_twins, cpu>(11, barlow_twins(0.01f));
    auto dev = make_joint<barlow_twins, cuda>(11, barlow_twins(0.01f));
    check_two_sgd_steps(host, dev, two_views(8, 460), {"projector.0.bias", "projector.2.bias"});
  }
  {
    auto host = make_joint<vicreg, cpu>(12, vicreg());
    auto dev = make_joint<vicreg, cuda>(12, vicreg());
    check_two_sgd_steps(host, dev, two_views(8, 470), {"projector.0.bias", "projector.2.bias"});
  }
}
