// SimMIM: every gradient of a training step against finite differences (raw and norm_pix targets,
// registers and LayerScale), the step's loss rebuilt as the official L1 on images, masked patches
// invisible to the encoder, unit masks per step, the mask token's init, learning, bad input.
#include <catch2/catch.hpp>
#include <ssl/methods/simmim.hpp>

#include "method_support.hpp"

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;
using namespace method_test;

namespace {
using tiny_simmim = ssl::simmim<ssl::vit<>>;
// 8x8 images, patch 2 -> a 4 x 4 grid of patches, units of 2 x 2 patches -> 4 units, dim 8
ssl::vit_options tiny_vit(int64_t channels = 1) {
  ssl::vit_options o{.image_size = 8, .patch = 2, .in_channels = channels, .dim = 8, .depth = 1, .heads = 2,
                     .mlp_ratio = 2.0f};
  o.mask_token = true;
  return o;
}
tiny_simmim make_tiny(ssl::simmim_options o = {.mask_ratio = 0.5f, .seed = 4}, ssl::vit_options vo = tiny_vit()) {
  return tiny_simmim(ssl::vit<>(vo, ssl::rng(2)), vo.in_channels, o, ssl::rng(3));
}
// L1 has a kink where a prediction meets its target: a central difference across one is off by
// up to 1 / (P M) per crossing. The head's bias is raised by 8 so that every prediction stays above
// its target (the test images are N(0, 1) draws, normalised patches within +-1.5) and no difference
// crosses a kink;
// the loss's own sign handling is checked against PyTorch in tests/losses.
void check_all_gradients(tiny_simmim& m, const std::vector<T>& views) {
  shake_parameters(m);
  for (auto& p : ssl::parameters(m))
    if (p.name == "head.bias")
      for (int64_t i = 0; i < p.p->value.numel(); ++i) p.p->value[i] += 8.0f;
  bool token_used = false;
  auto first_step = [&] { token_used = m.encoder().mask_token().grad.vec().norm() > 0; };
  auto step = [&] {
    m.set_step_count(0);  // the same masks every evaluation
    return m.train_step(views).loss;
  };
  const auto r = check_step_gradients(m, step, all_params, {.eps = 1e-3, .max_checks = 6}, first_step);
  INFO(r.report());
  CHECK(r.ok());
  CHECK(token_used);
}
}  // namespace

static_assert(ssl::Method<tiny_simmim>);

TEST_CASE("simmim: train_step gradients (encoder, mask token, head) match finite differences") {
  auto m = make_tiny();
  check_all_gradients(m, {random_batch(3, 1, 8, 8, 5)});
  SECTION("three channels") {
    auto c3 = make_tiny({.mask_ratio = 0.5f, .seed = 4}, tiny_vit(3));
    check_all_gradients(c3, {random_batch(2, 3, 8, 8, 6)});
  }
}

TEST_CASE("simmim: norm_pix targets, registers and LayerScale: every gradient matches finite differences") {
  ssl::vit_options vo = tiny_vit();
  vo.registers = 2;
  vo.layer_scale = 0.5f;
  auto m = make_tiny({.mask_ratio = 0.6f, .norm_pix = true, .seed = 4}, vo);
  CHECK(m.loss().norm_pix());
  check_all_gradients(m, {random_batch(3, 1, 8, 8, 7)});
}

TEST_CASE("simmim: the step's loss is the official L1 over masked pixels; masked patches are unseen") {
  auto m = make_tiny();
  shake_parameters(m);
  const T x = random_batch(2, 1, 8, 8, 8);
  const auto mk = m.mask_for_step(2, 4, 4, 0);
  // 4 units of 2 x 2 patches, ratio 0.5: 2 units = 8 of the 16 patches hidden per image
  CHECK(mk.hidden_in(0) == 8);
  CHECK(mk.hidden_in(1) == 8);
  const T pred = m.forward(x, mk).y;  // (2, 16, 4)
  REQUIRE(pred.shape() == shape{2, 16, 4});
  // official: x_rec = PixelShuffle of the head's channels (channel-major within a patch), mask
  // upsampled to pixels, loss = sum(|x_rec - x| mask) / (sum(mask) C)
  double abs_sum = 0, pixels = 0;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t yy = 0; yy < 8; ++yy)
      for (int64_t xx = 0; xx < 8; ++xx) {
        const int64_t l = (yy / 2) * 4 + xx / 2, k = (yy % 2) * 2 + xx % 2;
        if (!mk.hidden[size_t(n * 16 + l)]) continue;
        abs_sum += std::abs(double(pred[(n * 16 + l) * 4 + k]) - x[(n * 8 + yy) * 8 + xx]);
        pixels += 1;
      }
  CHECK(pixels == 2 * 8 * 4);
  CHECK(m.train_step({x}).loss == Approx(abs_sum / pixels).epsilon(1e-5));
  CHECK(m.step_count() == 0);
  m.after_step({.step = 1});
  CHECK(m.step_count() == 1);
  // a masked patch's pixels do not reach any output; a visible patch's do
  T x2 = x;
  int64_t hidden_l = -1, visible_l = -1;
  for (int64_t l = 0; l < 16; ++l) (mk.hidden[size_t(l)] ? hidden_l : visible_l) = l;
  auto bump = [&](T& t, int64_t l) {
    for (int64_t k = 0; k < 4; ++k) t[((l / 4) * 2 + k / 2) * 8 + (l % 4) * 2 + k % 2] += 1.0f;
  };
  bump(x2, hidden_l);
  CHECK(max_diff(m.forward(x, mk).y, m.forward(x2, mk).y) == 0.0);
  T x3 = x;
  bump(x3, visible_l);
  CHECK(max_diff(m.forward(x, mk).y, m.forward(x3, mk).y) > 1e-4);
  // targets are the patchified images
  CHECK(max_diff(m.targets(x), ssl::ops::patchify(x, 2)) == 0.0);
}

TEST_CASE("simmim: masks change per step, reproducibly from the seed; the mask token starts trunc_normal(0.02)") {
  auto a = make_tiny(), b = make_tiny();
  CHECK(a.mask_for_step(4, 4, 4, 3).hidden == b.mask_for_step(4, 4, 4, 3).hidden);
  CHECK(a.mask_for_step(4, 4, 4, 3).hidden != a.mask_for_step(4, 4, 4, 4).hidden);
  auto c = make_tiny({.mask_ratio = 0.5f, .seed = 5});
  CHECK(a.mask_for_step(4, 4, 4, 3).hidden != c.mask_for_step(4, 4, 4, 3).hidden);
  // the replica's rows of the global draw
  auto r = make_tiny();
  r.set_replica(1, 2);
  const auto all = a.mask_for_step(8, 4, 4, 2), mine = r.mask_for_step(4, 4, 4, 2);
  CHECK(std::equal(mine.hidden.begin(), mine.hidden.end(), all.hidden.begin() + 4 * 16));
  // mask token: the ViT's zero init replaced by trunc_normal(0.02) (|v| <= 0.04), or kept with std 0
  const T tok = a.encoder().mask_token().value;
  CHECK(tok.vec().norm() > 0);
  CHECK(tok.vec().cwiseAbs().maxCoeff() <= 0.04f);
  auto z = make_tiny({.mask_ratio = 0.5f, .mask_token_std = 0.0f});
  CHECK(z.encoder().mask_token().value.vec().norm() == 0);
  // the names: the mask token is the encoder's, the head's weight maps D -> C p p
  bool named = false;
  for (auto& p : ssl::parameters(a)) named |= p.name == "encoder.mask_token";
  CHECK(named);
  CHECK(a.head().out_features() == 4);
}

TEST_CASE("simmim: a few steps reduce the loss on fixed images") {
  auto m = make_tiny({.mask_ratio = 0.5f, .seed = 1});
  const std::vector<T> views{random_batch(8, 1, 8, 8, 9)};
  auto [first, last] = train_a_little(m, [&] {
    m.set_step_count(0);
    return m.train_step(views).loss;
  }, 30, 0.2f);
  // 0.90 -> 0.73 here, below 0.80 = E|z|, the L1 of the best constant guess for N(0, 1) pixels
  CHECK(last < 0.85f * first);
}

TEST_CASE("simmim: bad inputs throw typed errors naming what was expected") {
  auto m = make_tiny();
  CHECK_THROWS_AS(m.train_step({}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(2, 1, 6, 7, 1)}); },
                            {"multiples of the patch size 2", "(2, 1, 6, 7)"});
  expect_shape_error_naming([&] { m.train_step({random_batch(2, 3, 8, 8, 1)}); }, {"channels = 3"});
  ssl::vit_options no_token = tiny_vit();
  no_token.mask_token = false;
  CHECK_THROWS_AS(tiny_simmim(ssl::vit<>(no_token), 1), ssl::value_error);
  CHECK_THROWS_AS(make_tiny({.mask_ratio = 1.0f}), ssl::value_error);
  CHECK_THROWS_AS(make_tiny({.mask_ratio = 0.0f}), ssl::value_error);
  CHECK_THROWS_AS(make_tiny({.mask_unit = 0}), ssl::value_error);
  CHECK_THROWS_AS(make_tiny({.mask_token_std = -1.0f}), ssl::value_error);
  CHECK_THROWS_AS(tiny_simmim(ssl::vit<>(tiny_vit()), 0), ssl::value_error);
  CHECK_THROWS_AS(m.set_replica(2, 2), ssl::value_error);
}
