// DINO with DINOv2's additions: iBOT's masked-patch loss through the shared head, Sinkhorn-Knopp
// teacher targets, KoLeo; checked against finite differences and a step recomputed by hand.
#include <ssl/methods/dino.hpp>

#include <limits>

#include "method_support.hpp"

using namespace method_test;

namespace {

// 8x8 global crops in 2x2 patches: a 4x4 grid, so DINOv2's block masks have room.
ssl::vit_options masked_vit() {
  return {.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mask_token = true};
}
ssl::dino_head<> small_head() {
  return ssl::dino_head<>({.in_dim = 8, .hidden_dim = 12, .bottleneck_dim = 6, .out_dim = 10}, ssl::rng(4));
}
auto make_dinov2(ssl::dino_options o = ssl::dino_options::dinov2()) {
  return ssl::dino_method<ssl::vit<>>(ssl::vit<>(masked_vit(), ssl::rng(2)), small_head(), o);
}
}  // namespace

TEST_CASE("dinov2: train_step gradients (every student parameter, mask token included) match finite differences") {
  for (auto centering : {ssl::dino_centering::sinkhorn_knopp, ssl::dino_centering::center}) {
    INFO("centering " << int(centering));
    ssl::dino_options o = ssl::dino_options::dinov2();
    o.centering = centering;
    o.ibot_masks.probability = 0.7f;
    auto m = make_dinov2(o);
    shake_parameters(m);
    const auto views = multi_crop(5, 2, 21);
    bool mask_token_grad = false;
    auto first_step = [&] {
      CHECK(m.last_hidden_patches() > 0);
      CHECK(m.last_ibot_loss() > 0.0f);
      for (auto& r : ssl::parameters(m))
        if (r.name == "student.backbone.mask_token") mask_token_grad = r.p->grad.vec().squaredNorm() > 0.0f;
    };
    // the step's masks depend on the step count only, so every re-run draws the same masks
    auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params,
                                    {.eps = 1e-3, .max_checks = 6}, first_step);
    CHECK(mask_token_grad);
    INFO(res.report());
    CHECK(res.ok());
    CHECK(res.checked > 60);
  }
}

TEST_CASE("dinov2: the step's losses equal DINO + KoLeo + iBOT recomputed from the drawn masks") {
  ssl::dino_options o = ssl::dino_options::dinov2();
  o.seed = 5;
  auto m = make_dinov2(o);
  shake_parameters(m);
  const int64_t B = 4, K = 10, G = 2, N = G * B;
  const auto views = multi_crop(B, 2, 31);
  const float total = m.train_step(views).loss;

  const auto xg = ssl::concat_batch({&views[0], &views[1]});
  const ssl::patch_mask pm = ssl::ibot_masks(N, 4, 4, o.ibot_masks, ssl::rng(5).fork(0));
  std::vector<int64_t> counts;
  for (int64_t n = 0; n < N; ++n) counts.push_back(pm.hidden_in(n));
  const int64_t M = pm.hidden_count();
  REQUIRE(M == m.last_hidden_patches());
  // student: masked global crops -> [CLS] and hidden-patch tokens; local crops unmasked
  const auto st = m.encoder().forward_tokens(xg, nullptr, &pm).y;   // (N, 17, 8)
  const auto tt = m.teacher_encoder().infer_tokens(xg);            // unmasked teacher
  ssl::tensor<ssl::cpu> s_cls({N, 8}), t_cls({N, 8}), s_patch({M, 8}), t_patch({M, 8});
  int64_t p = 0;
  for (int64_t n = 0; n < N; ++n) {
    std::copy_n(st.data() + n * 17 * 8, 8, s_cls.data() + n * 8);
    std::copy_n(tt.data() + n * 17 * 8, 8, t_cls.data() + n * 8);
    for (int64_t l = 0; l < 16; ++l)
      if (pm.hidden[size_t(n * 16 + l)]) {
        std::copy_n(st.data() + (n * 17 + 1 + l) * 8, 8, s_patch.data() + p * 8);
        std::copy_n(tt.data() + (n * 17 + 1 + l) * 8, 8, t_patch.data() + p * 8);
        ++p;
      }
  }
  ssl::tensor<ssl::cpu> s(ssl::shape{4, B, K});
  const auto sg = m.head().infer(s_cls);
  std::copy_n(sg.data(), N * K, s.data());
  for (int v = 2; v < 4; ++v) {
    const auto y = m.head().infer(m.encoder().infer(views[size_t(v)]));
    std::copy_n(y.data(), B * K, s.data() + v * B * K);
  }
  // no warm-up: the teacher temperature is 0.07 from step 0; Sinkhorn-Knopp over all N rows
  auto tcls = m.teacher_head().infer(t_cls);
  tcls.reshape({G, B, K});
  const ssl::dino dref(K, 0.1f, 0.04f);
  const float dino_value = dref.with_targets(s, ssl::sinkhorn_knopp(tcls, 0.07f)).value;
  const ssl::ibot_patch iref(K, 0.1f, 0.04f);
  const float ibot_value =
      iref.with_targets(m.head().infer(s_patch), ssl::sinkhorn_knopp(m.teacher_head().infer(t_patch), 0.07f), counts)
          .value;
  float koleo_value = 0;
  for (int64_t g = 0; g < G; ++g)
    koleo_value += ssl::koleo{}(ssl::methods_detail::rows(s_cls, g * B, (g + 1) * B)).value;
  CHECK(m.last_dino_loss() == Approx(dino_value).epsilon(1e-5));
  CHECK(m.last_ibot_loss() == Approx(ibot_value).epsilon(1e-5));
  CHECK(total == Approx(dino_value + 0.1f * koleo_value + ibot_value).epsilon(1e-5));
}

TEST_CASE("dinov2: masks follow the seed and the step; centers move only under centering") {
  auto a = make_dinov2(), b = make_dinov2();
  ssl::dino_options o2 = ssl::dino_options::dinov2();
  o2.seed = 1;
  auto c = make_dinov2(o2);
  const auto views = multi_crop(6, 1, 41);
  const float la = a.train_step(views).loss, lb = b.train_step(views).loss, lc = c.train_step(views).loss;
  CHECK(la == lb);
  CHECK(la != lc);
  ssl::param_list<ssl::cpu> all;
  a.collect(all, "");
  a.after_step({1, 10, 0});
  b.after_step({1, 10, 0});
  CHECK(a.train_step(views).loss != la);  // step 1 draws other masks (and the teacher moved)
  // Sinkhorn-Knopp: no centers; centering: both the [CLS] and the patch center move
  CHECK(a.center().vec().squaredNorm() == 0.0f);
  CHECK(a.patch_center().vec().squaredNorm() == 0.0f);
  ssl::dino_options oc = ssl::dino_options::dinov2();
  oc.centering = ssl::dino_centering::center;
  oc.ibot_masks.probability = 1.0f;
  auto d = make_dinov2(oc);
  d.train_step(views);
  d.after_step({1, 10, 0});
  CHECK(d.center().vec().squaredNorm() > 0.0f);
  CHECK(d.patch_center().vec().squaredNorm() > 0.0f);
  ssl::methods_detail::buffer_list<> bufs;
  d.collect_buffers(bufs, "");
  bool found = false;
  for (auto& [name, t] : bufs) found = found || name == "patch_center";
  CHECK(found);
}

TEST_CASE("dinov2: learns on fixed views") {
  auto m = make_dinov2();
  const auto views = multi_crop(8, 2, 51);
  auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 12, 0.05f);
  CHECK(std::isfinite(last));
  CHECK(last < first);
}

TEST_CASE("dinov2: iBOT without a maskable token encoder is a typed error") {
  // a ViT built without its mask token
  CHECK_THROWS_AS(ssl::dino_method<ssl::vit<>>(ssl::vit<>({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8,
                                                           .depth = 1, .heads = 2}),
                                               small_head(), ssl::dino_options::dinov2()),
                  ssl::value_error);
  // an encoder with pooled features only
  CHECK_THROWS_AS(ssl::dino_method<ssl::convnet_s<>>(ssl::convnet_s<>(1, ssl::rng(1)),
                                                     ssl::dino_head<>({.in_dim = 256, .out_dim = 16}),
                                                     {.ibot_weight = 1.0f}),
                  ssl::value_error);
  // but the rest of DINOv2 (Sinkhorn-Knopp, KoLeo) works with it
  ssl::dino_method<ssl::convnet_s<>> ok(ssl::convnet_s<>(1, ssl::rng(1)), ssl::dino_head<>({.in_dim = 256, .out_dim = 16}),
                                        {.koleo_weight = 0.1f, .centering = ssl::dino_centering::sinkhorn_knopp});
  auto views = two_views(4, 1, 12, 12, 3);
  CHECK(std::isfinite(ok.train_step(views).loss));
  CHECK_THROWS_AS(make_dinov2({.sinkhorn_iterations = 0}), ssl::value_error);
  // a NaN image: the Sinkhorn-Knopp targets turn NaN and the step reports a non-finite loss
  auto m = make_dinov2();
  auto nan_views = multi_crop(4, 1, 9);
  nan_views[0][5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(m.train_step(nan_views), ssl::numeric_error);
  ssl::dino_options bad = ssl::dino_options::dinov2();
  bad.ibot_masks.ratio_max = 2.0f;
  CHECK_THROWS_AS(make_dinov2(bad), ssl::value_error);
}
