// The library's own I-JEPA instantiated for the GPU: ijepa<vit<cuda>, ijepa_predictor<cuda>> +
// adamw<cuda> takes the same training steps as the <cpu> instantiation (loss, gradients, parameters,
// the EMA target encoder), and the predictor's forward / backward match on their own.
#include <ssl/encoders/vit.hpp>
#include <ssl/heads/ijepa_predictor.hpp>
#include <ssl/methods/ijepa.hpp>
#include <ssl/optim/adamw.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
using ijepa_t = ijepa<vit<B>, ijepa_predictor<B>>;

// ViT-T/4-like but small: 28x28x1, patch 4 (49 patches), D 32, depth 2, 2 heads; predictor D 16, depth 2.
template <class B>
ijepa_t<B> make_ijepa(uint64_t seed) {
  return ijepa_t<B>(
      vit<B>({.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2}, rng(seed)),
      ijepa_predictor<B>({.in_dim = 32, .dim = 16, .depth = 2, .heads = 2, .grid = 7}, rng(seed).fork(1)),
      ijepa_options{.momentum_base = 0.9f, .seed = 5});
}
}  // namespace

static_assert(Method<ijepa_t<cuda>>);

TEST_CASE("cuda: ijepa<vit<cuda>, ijepa_predictor<cuda>> + adamw<cuda> steps like the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_ijepa<cpu>(7);
  auto dev = make_ijepa<cuda>(7);  // the only difference: the backend argument
  // the same host-drawn masks; after_step moves both target encoders (the buffers compared at the end)
  check_two_adamw_steps(host, dev, one_view(8, 1, 400), /*after_step=*/true);
  CHECK(dev.step_count() == 2);
  CHECK(dev.momentum() == host.momentum());
  expect_close_buffers(host, dev);  // the target encoders after two EMA updates
}

TEST_CASE("cuda: ijepa_predictor<cuda> forward / backward match ijepa_predictor<cpu>, overlapping targets too") {
  SSL_REQUIRE_CUDA_DEVICE();
  const ijepa_predictor_options o{.in_dim = 24, .dim = 16, .depth = 2, .heads = 2, .grid = 7,
                                  .pos = pos_embed_kind::learned};
  ijepa_predictor<cpu> host(o, rng(2));
  ijepa_predictor<cuda> dev(o, rng(2));
  const param_pair ps = collect_params(host, dev);
  for (bool overlap : {false, true}) {
    INFO("allow_overlap " << overlap);
    zero_gradients(ps);
    const auto m = multiblock_mask(5, 7, 7, rng(9), {.allow_overlap = overlap});
    const tensor<cpu> ctx = random(shape{5, 1 + m.context.kept, 24}, 410);
    const tensor<cpu> dy = random(shape{5, m.target_tokens, 24}, 411);
    auto h = host.forward(ctx, m.context, m.targets[2], m.target_tokens);
    auto d = dev.forward(to_device(ctx), m.context, m.targets[2], m.target_tokens);
    CHECK(rel_diff(d.y, h.y) < 1e-4);
    CHECK(rel_diff(dev.backward(d.saved, to_device(dy)), host.backward(h.saved, dy)) < 2e-3);
    expect_close_gradients(ps);
  }
}
