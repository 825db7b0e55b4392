#include <catch2/catch.hpp>
#include <ssl/nn/patch_embed.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("patch_embed matches PyTorch's Conv2d(k = s = p): output and gradients (2 channels)") {
  ssl_test::fixture fx("vit/patch_embed.json");
  ssl::patch_embed<> pe({.in_channels = 2, .patch = 4, .dim = 8});
  pe.proj().weight().value = fx.tensor("weight");
  pe.proj().bias().value = fx.tensor("bias");
  const T x = fx.tensor("x");
  auto [y, saved] = pe.forward(x);
  CHECK(y.shape() == shape{2, 4, 8});
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(pe.infer(x), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(pe.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
  CHECK(ssl_test::rel_error(pe.proj().weight().grad, fx.tensor("d_weight")) <= 1e-4);
  CHECK(ssl_test::rel_error(pe.proj().bias().grad, fx.tensor("d_bias")) <= 1e-4);
  auto params = ssl::parameters(pe, "patch_embed");
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "patch_embed.proj.weight");
}

TEST_CASE("patch_embed passes the gradient check; patchify and unpatchify are inverse") {
  ssl::patch_embed<> pe({.in_channels = 1, .patch = 2, .dim = 3}, ssl::rng(2));
  ssl::rng g(3);
  T x(shape{2, 1, 4, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  auto r = ssl::testing::check_module_gradients(pe, x);
  INFO(r.report());
  CHECK(r.ok());
  const T p = ssl::ops::patchify(x, 2);
  CHECK(p.shape() == shape{2, 6, 4});
  CHECK(p.at(0, 1, 2) == x.at(0, 0, 1, 2));  // patch (0, 1), row 1 col 0
  CHECK(ssl_test::rel_error(ssl::ops::unpatchify(p, 1, 2, 2, 3), x) == 0.0);
}

TEST_CASE("random_token_mask: K = int(L (1 - ratio)), per-sample permutation, reproducible") {
  const auto m = ssl::random_token_mask(3, 49, 0.75f, ssl::rng(11));
  CHECK(m.kept == 12);  // W2: int(49 * 0.25)
  for (int64_t n = 0; n < 3; ++n) {
    double hidden = 0;
    for (int64_t l = 0; l < 49; ++l) hidden += m.mask[n * 49 + l];
    CHECK(hidden == 37);
    for (int64_t k = 0; k < 12; ++k) {
      const int32_t l = m.keep[size_t(n * 12 + k)];
      CHECK(m.mask[n * 49 + l] == 0.0f);
      CHECK(m.restore[size_t(n * 49 + l)] == k);
    }
  }
  CHECK(m.keep[0] != m.keep[12]);  // samples differ (fixed seed; fails only if the draws are shared)
  const auto again = ssl::random_token_mask(3, 49, 0.75f, ssl::rng(11));
  CHECK(again.keep == m.keep);
  CHECK(ssl::random_token_mask(1, 4, 0.0f, ssl::rng(1)).kept == 4);
  CHECK_THROWS_AS(ssl::random_token_mask(1, 4, 1.0f, ssl::rng(1)), ssl::value_error);
}

TEST_CASE("patch_embed rejects images whose sides are not multiples of the patch") {
  ssl::patch_embed<> pe({.in_channels = 1, .patch = 4, .dim = 8});
  CHECK_THROWS_AS(pe.forward(T(shape{1, 1, 10, 12})), ssl::shape_error);
  CHECK_THROWS_AS(pe.infer(T(shape{1, 3, 8, 8})), ssl::shape_error);
  try {
    pe.infer(T(shape{1, 1, 10, 12}));
  } catch (const ssl::shape_error& e) {
    CHECK(std::string(e.what()).find("(1, 1, 10, 12)") != std::string::npos);
  }
}
