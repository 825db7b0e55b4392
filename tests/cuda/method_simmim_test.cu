// The library's own SimMIM instantiated for the GPU: simmim<vit<cuda>> + adamw<cuda> takes the same
// training steps as the <cpu> instantiation (loss, gradients, parameters; host-drawn unit masks, the
// mask-token plumbing, the head and the L1 loss on the device), with raw and norm_pix targets, and
// forward / backward with a caller's mask match.
#include <ssl/encoders/vit.hpp>
#include <ssl/methods/simmim.hpp>
#include <ssl/optim/adamw.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
// ViT-T/4-like but small: 28x28x1, patch 4 (49 patches, 4 x 4 mask units of 2 x 2), D 32, depth 2, 2 heads.
template <class B>
simmim<vit<B>> make_simmim(uint64_t seed, bool norm_pix = false) {
  vit_options o{.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2};
  o.mask_token = true;
  return simmim<vit<B>>(vit<B>(o, rng(seed)), /*channels=*/1, simmim_options{.norm_pix = norm_pix, .seed = 5},
                        rng(seed).fork(1));
}
}  // namespace

static_assert(Method<simmim<vit<cuda>>>);

TEST_CASE("cuda: simmim<vit<cuda>> + adamw<cuda> steps like the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (bool norm_pix : {false, true}) {
    INFO("norm_pix " << norm_pix);
    auto host = make_simmim<cpu>(7, norm_pix);
    auto dev = make_simmim<cuda>(7, norm_pix);  // the only difference: the backend argument
    // the same host-drawn masks; after_step sets the step count (the next mask)
    check_two_adamw_steps(host, dev, one_view(8, 1, 310), /*after_step=*/true);
    CHECK(dev.step_count() == 2);
  }
}

TEST_CASE("cuda: simmim<vit<cuda>> forward / backward with a caller's mask match the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_simmim<cpu>(11);
  auto dev = make_simmim<cuda>(11);
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  const patch_mask m = host.mask_for_step(3, 7, 7, 4);
  const tensor<cpu> x = random(shape{3, 1, 28, 28}, 41, 0.0f, 1.0f);
  const tensor<cpu> dy = random(shape{3, 49, 16}, 42);
  zero_gradients(ps);
  auto h = host.forward(x, m);
  auto d = dev.forward(to_device(x), m);
  CHECK(rel_diff(d.y, h.y) < 1e-4);
  const tensor<cpu> hdx = host.backward(h.saved, dy);
  const tensor<cuda> ddx = dev.backward(d.saved, to_device(dy));
  CHECK(rel_diff(ddx, hdx) < 2e-3);
  expect_close_gradients(ps);
  CHECK(rel_diff(dev.targets(to_device(x)), host.targets(x)) == 0.0);
}
