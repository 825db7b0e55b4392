// MSN on the device: msn_loss (cosine scores, sharpened / Sinkhorn-balanced targets, ME-MAX and
// entropy terms, both row normalisations) matches its CPU reference, and the library's msn<vit<cuda>,
// projection_mlp<cuda>> takes the same SGD steps as the <cpu> instantiation with a target view, a
// masked global anchor and two masked 12x12 focal views (loss, terms, gradients, the prototypes'
// included, values, the EMA target network and the head's BN statistics).
#include <ssl/encoders/vit.hpp>
#include <ssl/losses/msn.hpp>
#include <ssl/methods/msn.hpp>
#include <ssl/optim/sgd.hpp>

#include "loss_parity.cuh"
#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;

namespace {
template <class B>
msn<vit<B>, projection_mlp<B>> make_msn(uint64_t seed, float entropy_weight) {
  msn_options o{.mask_ratio = 0.3f, .prototypes = 40, .momentum_base = 0.9f, .seed = 13};
  o.loss.entropy_weight = entropy_weight;
  return {vit<B>({.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2}, rng(seed)),
          projection_mlp<B>(msn_options::projector(32, 64, 16), rng(seed).fork(1)), o, rng(seed).fork(2)};
}

// At step s: the target view and the anchor view (28x28), then 2 focal views (12x12), seeds 600 + 10 s + v.
std::vector<tensor<cpu>> msn_views(int step) {
  std::vector<tensor<cpu>> views;
  for (int v = 0; v < 4; ++v) {
    const int64_t size = v < 2 ? 28 : 12;
    views.push_back(random(shape{8, 1, size, size}, 600 + 10 * uint64_t(step) + uint64_t(v), 0.0f, 1.0f));
  }
  return views;
}
}  // namespace

static_assert(Method<msn<vit<cuda>, projection_mlp<cuda>>>);

TEST_CASE("cuda: msn_loss on the device matches the CPU reference", "[msn]") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [sinkhorn, w_ent, V] : {std::tuple{true, 0.0f, 3}, std::tuple{false, 0.0f, 1},
                                           std::tuple{true, 0.5f, 2}, std::tuple{false, 0.25f, 11}}) {
    INFO("sinkhorn " << sinkhorn << " entropy weight " << w_ent << " anchor views " << V);
    const msn_loss loss({.entropy_weight = w_ent, .sinkhorn = sinkhorn});
    const int64_t N = 24, d = 256, K = 1024;
    const tensor<cpu> anchors = random(shape{V * N, d}, 700), target = random(shape{N, d}, 701),
                      protos = random(shape{K, d}, 702);
    const msn_result ref = loss(anchors, target, protos);
    const auto got = loss(to_device(anchors), to_device(target), to_device(protos));
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.targets, ref.targets) < 1e-4);
    CHECK(rel_diff(got.parts, ref.parts) < 1e-4);
    CHECK(rel_diff(got.grad_anchors, ref.grad_anchors) < 1e-3);
    CHECK(rel_diff(got.grad_prototypes, ref.grad_prototypes) < 1e-3);
    // deterministic: fixed-order reductions
    const auto again = loss(to_device(anchors), to_device(target), to_device(protos));
    CHECK(to_host_scalar(again.value) == to_host_scalar(got.value));
  }
}

TEST_CASE("cuda: msn<vit<cuda>, projection_mlp<cuda>> steps like the <cpu> instantiation", "[msn]") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (float w_ent : {0.0f, 0.3f}) {
    INFO("entropy weight " << w_ent);
    auto host = make_msn<cpu>(3, w_ent);
    auto dev = make_msn<cuda>(3, w_ent);  // the only difference: the backend argument
    const param_pair ps = collect_params(host, dev);
    expect_identical_init(ps);
    expect_identical_buffers(host, dev);
    const sgd_options so{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
    sgd host_opt(ps.host, so);
    sgd dev_opt(ps.dev, so);
    parity_steps_options o{.bn_fed_biases = {"head.0.bias", "head.3.bias"}, .after_step_total = 10};
    o.after_train_step = [&](int) {
      const auto h = host.last_terms(), d = dev.last_terms();
      for (size_t i = 0; i < 3; ++i) expect_close_loss(h[i], d[i], "last_terms");
      CHECK(parity_detail::host_grad_of(ps, "prototypes").vec().squaredNorm() > 0.0f);
    };
    o.end_of_step = [&](int) {
      CHECK(dev.momentum() == host.momentum());
      expect_close_buffers(host, dev);
    };
    run_parity_steps(host, dev, ps, host_opt, dev_opt, msn_views, o);
  }
}

TEST_CASE("cuda: msn_loss rejects mismatched inputs before any device work", "[msn]") {
  // Runs without a GPU: zero-element device tensors allocate nothing, and the checks come first.
  const msn_loss loss;
  CHECK_THROWS_AS(loss(empty_device(shape{0, 8}), empty_device(shape{0, 8}), empty_device(shape{0, 8})), shape_error);
  CHECK_THROWS_WITH(loss.with_targets(empty_device(shape{0, 5}), empty_device(shape{0, 7})),
                    Catch::Contains("msn targets"));
}
