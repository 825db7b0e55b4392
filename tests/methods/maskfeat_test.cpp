#include <ssl/methods/maskfeat.hpp>

#include "method_support.hpp"

using namespace method_test;

namespace {
ssl::vit_options tiny_vit() { return {.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2}; }
auto make_maskfeat(float ratio = 0.5f) {
  return ssl::maskfeat<ssl::vit<>>(ssl::vit<>(tiny_vit(), ssl::rng(2)), 1, {.mask_ratio = ratio});
}
}  // namespace

static_assert(ssl::Method<ssl::maskfeat<ssl::vit<>>>);

TEST_CASE("maskfeat: train_step gradients (encoder, mask token, head) match finite differences") {
  auto m = make_maskfeat();
  shake_parameters(m);
  const std::vector<ssl::tensor<ssl::cpu>> views{random_batch(3, 1, 8, 8, 5)};
  // the mask token got a gradient in the step (it replaced the masked patches)
  bool seen = false;
  auto first_step = [&] {
    for (auto& r : ssl::parameters(m))
      if (r.name == "mask_token") seen = r.p->grad.vec().norm() > 0;
  };
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params,
                                  {.eps = 1e-3, .max_checks = 6}, first_step);
  INFO(res.report());
  CHECK(res.ok());
  CHECK(seen);
}

TEST_CASE("maskfeat on a ViT with registers and LayerScale: every gradient (registers, gammas) matches finite differences") {
  ssl::vit_options vo = tiny_vit();
  vo.registers = 2;
  vo.layer_scale = 0.5f;
  ssl::maskfeat<ssl::vit<>> m(ssl::vit<>(vo, ssl::rng(2)), 1, {.mask_ratio = 0.5f});
  shake_parameters(m);
  const std::vector<ssl::tensor<ssl::cpu>> views{random_batch(3, 1, 8, 8, 5)};
  int used = 0;  // the registers and the gammas take part in the step
  auto first_step = [&] {
    for (auto& r : ssl::parameters(m))
      if (r.name == "encoder.register_tokens" || r.name == "encoder.blocks.0.ls1.gamma")
        used += r.p->grad.vec().norm() > 0;
  };
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params,
                                  {.eps = 1e-3, .max_checks = 6}, first_step);
  INFO(res.report());
  CHECK(res.ok());
  CHECK(used == 2);
}

TEST_CASE("maskfeat: masked patches are replaced by the mask token; the loss covers masked patches only") {
  auto m = make_maskfeat();
  shake_parameters(m);
  const auto x = random_batch(2, 1, 8, 8, 6);
  ssl::tensor<ssl::cpu> mask(ssl::shape{2, 4}, 0.0f);
  mask[1] = 1.0f;  // image 0, patch 1 (rows 0-3, columns 4-7)
  auto x2 = x;
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t c = 4; c < 8; ++c) x2[y * 8 + c] += 1.0f;
  CHECK(max_diff(m.forward(x, mask).y, m.forward(x2, mask).y) == 0.0);
  ssl::tensor<ssl::cpu> none(ssl::shape{2, 4}, 0.0f);
  CHECK(max_diff(m.forward(x, none).y, m.forward(x2, none).y) > 1e-4);
  // the step's loss equals MSE over the masked patches of the step's mask against HoG targets
  const auto mk = m.mask_for_step(2, 4, 0);
  const auto pred = m.forward(x, mk.mask).y;
  const auto target = ssl::pretext::hog(x);
  double se = 0, count = 0;
  for (int64_t r = 0; r < 8; ++r)
    if (mk.mask[r] != 0.0f) {
      for (int64_t k = 0; k < 9; ++k) se += std::pow(double(pred[r * 9 + k]) - target[r * 9 + k], 2) / 9.0;
      ++count;
    }
  CHECK(count == 4);  // int(4 * 0.5) = 2 kept of 4 per image
  CHECK(m.train_step({x}).loss == Approx(se / count).epsilon(1e-5));
}

TEST_CASE("maskfeat: a few steps reduce the loss on fixed images") {
  auto m = make_maskfeat(0.5f);
  const std::vector<ssl::tensor<ssl::cpu>> views{random_batch(8, 1, 8, 8, 7)};
  auto [first, last] = train_a_little(m, [&] {
    m.set_step_count(0);  // the same mask every step
    return m.train_step(views).loss;
  }, 15, 0.05f);
  CHECK(last < first);
}

TEST_CASE("maskfeat: bad inputs throw typed errors naming what was expected") {
  auto m = make_maskfeat();
  CHECK_THROWS_AS(m.train_step({}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(2, 1, 6, 8, 1)}); }, {"multiples of the patch size 4", "(2, 1, 6, 8)"});
  CHECK_THROWS_AS(ssl::maskfeat<ssl::vit<>>(ssl::vit<>(tiny_vit()), 1, {.hog = {.cell = 2, .patch = 2}}), ssl::value_error);
  CHECK_THROWS_AS(make_maskfeat(1.0f), ssl::value_error);
}
