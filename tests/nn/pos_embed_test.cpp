#include <catch2/catch.hpp>
#include <ssl/nn/pos_embed.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("pos_embed: bicubic interpolation (align_corners=False) matches PyTorch, forward and backward") {
  ssl_test::fixture fx("vit/pos_embed.json");
  ssl::pos_embed<> pe({.grid_h = 4, .grid_w = 4, .dim = 6});
  pe.table().value = fx.tensor("pos");
  for (auto [h, w] : {std::pair{3, 3}, std::pair{6, 6}, std::pair{2, 5}}) {
    const std::string tag = std::to_string(h) + "x" + std::to_string(w);
    INFO(tag);
    pe.table().grad.zero();
    auto [y, saved] = pe.forward(fx.tensor("tokens_" + tag), h, w);
    CHECK(ssl_test::rel_error(y, fx.tensor("y_" + tag)) <= 1e-4);
    const T dx = pe.backward(saved, fx.tensor("cot_" + tag));
    CHECK(ssl_test::rel_error(dx, fx.tensor("cot_" + tag)) == 0.0);
    CHECK(ssl_test::rel_error(pe.table().grad, fx.tensor("dpos_" + tag)) <= 1e-4);
  }
}

TEST_CASE("pos_embed: MAE's fixed 2-D sin-cos table matches the reference and gets no gradient") {
  ssl_test::fixture fx("vit/pos_embed.json");
  ssl::pos_embed<> a({.grid_h = 3, .grid_w = 3, .dim = 8, .kind = ssl::pos_embed_kind::sincos});
  CHECK(ssl_test::rel_error(a.table().value.reshaped(shape{10, 8}), fx.tensor("sincos_8_3x3")) <= 1e-6);
  CHECK(a.table().frozen);
  const T t = ssl::ops::sincos_pos_embed_2d(12, 2, 4, true);
  CHECK(ssl_test::rel_error(t, fx.tensor("sincos_12_2x4")) <= 1e-6);
  auto o = a.forward(T(shape{1, 10, 8}, 1.0f));
  a.backward(o.saved, T(shape{1, 10, 8}, 1.0f));
  CHECK(a.table().grad.vec().norm() == 0.0f);
}

TEST_CASE("pos_embed passes the gradient check at the base grid and through the interpolation") {
  ssl::rng g(3);
  ssl::pos_embed<> pe({.grid_h = 4, .grid_w = 4, .dim = 3}, ssl::rng(4));
  T x9(shape{2, 10, 3}), x16(shape{2, 17, 3});
  for (int64_t i = 0; i < x9.numel(); ++i) x9[i] = g.normal();
  for (int64_t i = 0; i < x16.numel(); ++i) x16[i] = g.normal();
  ssl::testing::gradient_check_options o;
  o.max_checks = 51;  // every table entry
  auto r16 = ssl::testing::check_module_gradients(pe, x16, o);  // square grid inferred: 4x4
  INFO(r16.report());
  CHECK(r16.ok());
  auto r9 = ssl::testing::check_module_gradients(pe, x9, o);  // 3x3: bicubic resize and its adjoint
  INFO(r9.report());
  CHECK(r9.ok());
}

TEST_CASE("pos_embed rejects token counts that do not match the grid") {
  ssl::pos_embed<> pe({.grid_h = 7, .grid_w = 7, .dim = 4});
  CHECK_THROWS_AS(pe.infer(T(shape{1, 11, 4})), ssl::shape_error);    // 10 patches: not square
  CHECK_THROWS_AS(pe.infer(T(shape{1, 10, 4}), 2, 2), ssl::shape_error);  // 2x2 needs 5 tokens
  CHECK_THROWS_AS(pe.infer(T(shape{1, 50, 5})), ssl::shape_error);    // wrong dim
  try {
    pe.infer(T(shape{1, 10, 4}), 2, 2);
  } catch (const ssl::shape_error& e) {
    CHECK(std::string(e.what()).find("(N, 5, 4)") != std::string::npos);
  }
}
