#include <catch2/catch.hpp>
#include <ssl/methods/mae.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
using tiny_mae = ssl::mae<ssl::vit<>, ssl::mae_decoder<>>;
tiny_mae make_tiny(bool norm_pix, float ratio = 0.5f) {
  // 8x8 images, patch 2 -> 16 patches; encoder dim 8, decoder dim 8.
  ssl::vit<> enc({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f},
                 ssl::rng(1));
  ssl::mae_decoder<> dec({.in_dim = 8, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f, .grid = 4, .patch_dim = 4},
                         ssl::rng(2));
  return tiny_mae(std::move(enc), std::move(dec), {.mask_ratio = ratio, .norm_pix_loss = norm_pix, .seed = 9});
}
T images(int64_t n, int64_t side, uint64_t seed) {
  ssl::rng g(seed);
  T x(shape{n, 1, side, side});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  return x;
}
}  // namespace

static_assert(ssl::Method<tiny_mae>);

TEST_CASE("MAE decoder of W2 has 430,096 parameters; W2's mask keeps 12 of 49 patches") {
  ssl::mae_decoder<> dec;
  CHECK(ssl::parameter_count(dec) == 430096);
  auto params = ssl::parameters(dec, "decoder");
  CHECK(params[0].name == "decoder.embed.weight");
  CHECK(params[2].name == "decoder.mask_token");
  CHECK(params[3].name == "decoder.pos_embed");
  CHECK(params.back().name == "decoder.pred.bias");
  ssl::mae<> m{ssl::vit<>{}, ssl::mae_decoder<>{}};
  CHECK(m.mask_for_step(4, 49, 0).kept == 12);
}

TEST_CASE("MAE train_step gradients match finite differences (norm_pix on and off)") {
  for (bool norm_pix : {true, false}) {
    INFO("norm_pix " << norm_pix);
    tiny_mae m = make_tiny(norm_pix);
    const std::vector<T> views{images(2, 8, 3)};
    ssl::param_list<> params;
    m.collect(params, "");
    for (auto& p : params) p.p->grad.zero();
    m.set_step_count(0);
    const float loss = m.train_step(views).loss;
    CHECK(std::isfinite(loss));
    std::vector<T> values, grads;
    for (auto& p : params) {
      values.push_back(p.p->value);
      grads.push_back(p.p->grad);
    }
    auto L = [&](std::vector<T>& vals) {
      for (size_t k = 0; k < params.size(); ++k) params[k].p->value = vals[k];
      m.set_step_count(0);  // same mask every evaluation
      return double(m.train_step(views).loss);
    };
    ssl::testing::gradient_check_options o;
    o.eps = 5e-3;
    o.max_checks = 4;
    auto r = ssl::testing::check_function_gradients(L, values, grads, o);
    INFO(r.report());
    CHECK(r.ok());
    CHECK(r.checked > 60);
  }
}

TEST_CASE("MAE masks are reproducible from (seed, step) and differ between steps") {
  tiny_mae a = make_tiny(true), b = make_tiny(true);
  const std::vector<T> views{images(4, 8, 5)};
  const float la = a.train_step(views).loss;
  CHECK(b.train_step(views).loss == la);
  CHECK(a.step_count() == 1);
  CHECK(a.mask_for_step(4, 16, 0).keep == b.mask_for_step(4, 16, 0).keep);
  CHECK(a.mask_for_step(4, 16, 0).keep != a.mask_for_step(4, 16, 1).keep);
  CHECK(a.train_step(views).loss != la);  // step 1: another mask
  a.after_step({.step = 7});
  CHECK(a.step_count() == 7);
}

TEST_CASE("MAE reconstruct returns per-patch predictions; bad views throw typed errors") {
  tiny_mae m = make_tiny(false);
  const T x = images(2, 8, 6);
  const auto mask = m.mask_for_step(2, 16, 0);
  CHECK(m.reconstruct(x, mask).shape() == shape{2, 16, 4});
  CHECK_THROWS_AS(m.train_step({x, x}), ssl::value_error);
  CHECK_THROWS_AS(m.train_step({images(2, 12, 1)}), ssl::shape_error);
  CHECK_THROWS_AS(make_tiny(true, 1.0f), ssl::value_error);
}
