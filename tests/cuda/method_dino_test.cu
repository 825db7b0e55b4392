// The library's own DINO instantiated for the GPU: dino_method<E<cuda>, dino_head<cuda>> + sgd<cuda>
// takes the same training steps as the <cpu> instantiation with multi-crop (2 global 28x28 + 2 local
// 12x12 crops), KoLeo (DINOv2) and a frozen last layer in the first step: loss, every gradient, every
// parameter, then after_step's center update and teacher EMA (all buffers compared). Two encoders:
// ConvNet-S (BN, teacher in train mode) and a small ViT (teacher in eval mode; resized position table
// for the local crops). DINOv2 (dino_options::dinov2(), ViT with its mask token): iBOT's block masks are
// drawn on the host from the seed, so both backends hide the same patches (last_hidden_patches equal);
// also compared: last_ibot_loss, the mask token's gradient, and the [CLS] and patch centers after
// after_step (centering::center), or Sinkhorn-Knopp targets (no centers); and once with the ViT's
// register tokens and LayerScale (their gradients are among the compared parameters).
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

// DINOv2: KoLeo, iBOT through the shared head (7x7 patch grid of the 28x28 global crops), the
// given teacher targets; teacher temperature warm-up and the frozen last layer as above.
// registers / layer_scale: DINOv2's ViT additions (register tokens, LayerScale) on top.
template <class B>
dino_method<vit<B>, dino_head<B>> make_vit_dinov2(uint64_t seed, dino_centering centering, int64_t registers = 0,
                                                  float layer_scale = 0.0f) {
  dino_options o = dino_options::dinov2(/*teacher_warmup_steps=*/2);
  o.freeze_last_layer_steps = 1;
  o.centering = centering;
  o.seed = 11;
  return {vit<B>({.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2,
                  .mask_token = true, .registers = registers, .layer_scale = layer_scale},
                 rng(seed)),
          dino_head<B>(head_options(32), rng(seed).fork(1)), o};
}

// At step s: 2 global 28x28 crops, then 2 local 12x12 crops, seeds 500 + 10 s + v.
std::vector<tensor<cpu>> crops(int step) {
  std::vector<tensor<cpu>> views;
  for (int v = 0; v < 4; ++v) {
    const int64_t size = v < 2 ? 28 : 12;
    views.push_back(random(shape{8, 1, size, size}, 500 + 10 * uint64_t(step) + uint64_t(v), 0.0f, 1.0f));
  }
  return views;
}

// Two SGD steps on the same crops; gradients (the mask token's included), values and, after each
// after_step({step + 1, 10, 0}), the teacher momentum and every buffer compared (center, teacher
// weights (EMA) and BN statistics).
template <class HostMethod, class DeviceMethod>
void check_dino_steps(HostMethod& host, DeviceMethod& dev) {
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  expect_close_buffers(host, dev);  // teacher = student copy, center 0
  const sgd_options so{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f};
  sgd host_opt(ps.host, so);
  sgd dev_opt(ps.dev, so);
  parity_steps_options o{.after_step_total = 10};
  o.after_train_step = [&](int) {
    expect_close_loss(host.last_dino_loss(), dev.last_dino_loss(), "last_dino_loss");
    expect_close_loss(host.last_ibot_loss(), dev.last_ibot_loss(), "last_ibot_loss");
    CHECK(dev.last_hidden_patches() == host.last_hidden_patches());
    if (host.options().ibot_weight > 0.0f) {  // iBOT is exercised: hidden patches, a mask-token gradient
      CHECK(host.last_hidden_patches() > 0);
      CHECK(host.last_ibot_loss() > 0.0f);
      for (const auto& r : ps.host)
        if (r.name == "student.backbone.mask_token") CHECK(r.p->grad.vec().squaredNorm() > 0.0f);
    }
  };
  o.end_of_step = [&](int) {
    CHECK(dev.momentum() == host.momentum());
    expect_close_buffers(host, dev);
  };
  run_parity_steps(host, dev, ps, host_opt, dev_opt, crops, o);
}
}  // namespace

static_assert(Method<dino_method<convnet_s<cuda>, dino_head<cuda>>>);
static_assert(Method<dino_method<vit<cuda>, dino_head<cuda>>>);
static_assert(MaskedTokenEncoder<vit<cuda>>);

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

TEST_CASE("cuda: DINOv2 (iBOT, KoLeo, Sinkhorn-Knopp) on vit<cuda> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_vit_dinov2<cpu>(5, dino_centering::sinkhorn_knopp);
  auto dev = make_vit_dinov2<cuda>(5, dino_centering::sinkhorn_knopp);
  check_dino_steps(host, dev);
  CHECK(host.center().vec().squaredNorm() == 0.0f);  // Sinkhorn-Knopp: the centers never move
  CHECK(host.patch_center().vec().squaredNorm() == 0.0f);
}

TEST_CASE("cuda: DINOv2 with centering (iBOT patch center) on vit<cuda> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_vit_dinov2<cpu>(6, dino_centering::center);
  auto dev = make_vit_dinov2<cuda>(6, dino_centering::center);
  check_dino_steps(host, dev);  // after_step: both centers compared with the other buffers
  CHECK(host.center().vec().squaredNorm() > 0.0f);
  CHECK(host.patch_center().vec().squaredNorm() > 0.0f);
}

TEST_CASE("cuda: DINOv2 on a ViT with 4 registers and LayerScale steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_vit_dinov2<cpu>(7, dino_centering::sinkhorn_knopp, 4, 0.1f);
  auto dev = make_vit_dinov2<cuda>(7, dino_centering::sinkhorn_knopp, 4, 0.1f);
  check_dino_steps(host, dev);
  int found = 0;  // the registers and a LayerScale gamma take part (non-zero gradient of the last step)
  for (const auto& r : ssl::parameters(host))
    if (r.name == "student.backbone.register_tokens" || r.name == "student.backbone.blocks.0.ls1.gamma") {
      INFO(r.name);
      CHECK(r.p->grad.vec().squaredNorm() > 0.0f);
      ++found;
    }
  CHECK(found == 2);
}
