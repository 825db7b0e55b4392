// The library's own MaskFeat instantiated for the GPU: maskfeat<vit<cuda>> + adamw<cuda> takes the
// same training steps as the <cpu> instantiation (loss, gradients, parameters; HoG targets from the
// host, the mask-token plumbing and the masked loss on the device), and forward / backward with a
// caller's mask (any number of masked patches per image) match.
#include <ssl/encoders/vit.hpp>
#include <ssl/methods/maskfeat.hpp>
#include <ssl/optim/adamw.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
// Small ViT: 28x28x1, patch 4 (49 patches), D 32, depth 2, 2 heads; HoG 4x4 cells, 9 bins (P = 9).
template <class B>
maskfeat<vit<B>> make_maskfeat(uint64_t seed) {
  return maskfeat<vit<B>>(vit<B>({.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2},
                                 rng(seed)),
                          /*channels=*/1, maskfeat_options{.mask_ratio = 0.4f, .seed = 5}, rng(seed).fork(1));
}
}  // namespace

static_assert(Method<maskfeat<vit<cuda>>>);

TEST_CASE("cuda: maskfeat<vit<cuda>> + adamw<cuda> steps like the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_maskfeat<cpu>(7);
  auto dev = make_maskfeat<cuda>(7);  // the only difference: the backend argument
  // the same host-drawn masks and HoG targets; after_step sets the step count (the next mask)
  check_two_adamw_steps(host, dev, one_view(8, 1, 300), /*after_step=*/true);
  CHECK(dev.step_count() == 2);
}

TEST_CASE("cuda: maskfeat<vit<cuda>> forward / backward with a caller's mask match the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_maskfeat<cpu>(11);
  auto dev = make_maskfeat<cuda>(11);
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  // Uneven mask: image 0 fully visible, image 1 one patch hidden, image 2 every third patch hidden.
  tensor<cpu> mask(shape{3, 49}, 0.0f);
  mask[49 + 10] = 1.0f;
  for (int64_t l = 0; l < 49; l += 3) mask[2 * 49 + l] = 1.0f;
  const tensor<cpu> x = random(shape{3, 1, 28, 28}, 41, 0.0f, 1.0f);
  const tensor<cpu> dy = random(shape{3, 49, 9}, 42);
  zero_gradients(ps);
  auto h = host.forward(x, mask);
  auto d = dev.forward(to_device(x), mask);
  CHECK(rel_diff(d.y, h.y) < 1e-4);
  const tensor<cpu> hdx = host.backward(h.saved, mask, dy);
  const tensor<cuda> ddx = dev.backward(d.saved, mask, to_device(dy));
  CHECK(rel_diff(ddx, hdx) < 2e-3);
  expect_close_gradients(ps);
  // No masked patch at all: the mask token gets no gradient on either backend.
  const tensor<cpu> none(shape{3, 49}, 0.0f);
  host.mask_token().grad.zero();
  dev.mask_token().grad.zero();
  auto h0 = host.forward(x, none);
  auto d0 = dev.forward(to_device(x), none);
  CHECK(rel_diff(d0.y, h0.y) < 1e-4);
  host.backward(h0.saved, none, dy);
  dev.backward(d0.saved, none, to_device(dy));
  CHECK(rel_diff(dev.mask_token().grad, host.mask_token().grad) == 0.0);
}
