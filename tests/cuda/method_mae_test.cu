// The library's own MAE instantiated for the GPU: mae<vit<cuda>, mae_decoder<cuda>> + adamw<cuda>
// takes the same training steps as the <cpu> instantiation (loss, gradients, parameters) and
// reconstructs the same patches; vit<cuda>'s other paths (drop-path, mean pooling, a resized position
// table, attention maps) match vit<cpu>.
#include <ssl/encoders/vit.hpp>
#include <ssl/heads/mae_decoder.hpp>
#include <ssl/methods/mae.hpp>
#include <ssl/optim/adamw.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
using mae_t = mae<vit<B>, mae_decoder<B>>;

// ViT-T/4-like but small: 28x28x1, patch 4 (49 patches), D 32, depth 2, 2 heads; decoder D 32, depth 2.
template <class B>
mae_t<B> make_mae(uint64_t seed) {
  return mae_t<B>(
      vit<B>({.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2}, rng(seed)),
      mae_decoder<B>({.in_dim = 32, .dim = 32, .depth = 2, .heads = 2, .grid = 7, .patch_dim = 16}, rng(seed).fork(1)),
      mae_options{.mask_ratio = 0.75f, .norm_pix_loss = true, .seed = 5});
}
}  // namespace

static_assert(Method<mae_t<cuda>>);

TEST_CASE("cuda: mae<vit<cuda>, mae_decoder<cuda>> + adamw<cuda> steps like the <cpu> instantiation") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_mae<cpu>(7);
  auto dev = make_mae<cuda>(7);  // the only difference: the backend argument
  // the same host-drawn masks; train_step itself counts the steps (no after_step)
  check_two_adamw_steps(host, dev, one_view(8, 1, 300), /*after_step=*/false);
  CHECK(dev.step_count() == 2);
  // No-grad reconstruction with a given host mask.
  const tensor<cpu> x = random(shape{4, 1, 28, 28}, 310, 0.0f, 1.0f);
  const token_mask m = host.mask_for_step(4, 49, 9);
  const tensor<cpu> rec = host.reconstruct(x, m);
  const tensor<cuda> dev_rec = dev.reconstruct(to_device(x), m);
  const shape expected{4, 49, 16};
  CHECK(dev_rec.shape() == expected);
  CHECK(rel_diff(dev_rec, rec) < 1e-3);
}

TEST_CASE("cuda: vit<cuda> drop-path, mean pooling, 12x12 crops and attention maps match vit<cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  const vit_options o{.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2,
                      .drop_path = 0.3f, .pool = vit_pool::mean};
  vit<cpu> host(o, rng(3));
  vit<cuda> dev(o, rng(3));
  const param_pair ps = collect_params(host, dev);
  for (int64_t side : {28, 12}) {  // 12x12: 3x3 tokens, the 7x7 position table bicubic-resized
    for (vit_pool pool : {vit_pool::mean, vit_pool::cls}) {
      INFO("side " << side << ", pool " << (pool == vit_pool::mean ? "mean" : "cls"));
      host.set_pool(pool);
      dev.set_pool(pool);
      zero_gradients(ps);
      const tensor<cpu> x = random(shape{6, 1, side, side}, 40 + uint64_t(side), 0.0f, 1.0f);
      const tensor<cpu> dy = random(shape{6, 32}, 50 + uint64_t(side));
      auto h = host.forward(x);  // the same drop-path draws (host rng, the same call counter)
      auto d = dev.forward(to_device(x));
      CHECK(rel_diff(d.y, h.y) < 1e-4);
      const tensor<cpu> hdx = host.backward(h.saved, dy);
      const tensor<cuda> ddx = dev.backward(d.saved, to_device(dy));
      CHECK(rel_diff(ddx, hdx) < 2e-3);
      expect_close_gradients(ps);
      CHECK(rel_diff(dev.infer(to_device(x)), host.infer(x)) < 1e-4);
      CHECK(rel_diff(dev.cls_attention(to_device(x)), host.cls_attention(x)) < 1e-4);
    }
  }
}
