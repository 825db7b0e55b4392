#include <catch2/catch.hpp>
#include <ssl/nn/layer_scale.hpp>
#include <ssl/nn/transformer_block.hpp>
#include <ssl/testing/gradient_check.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
T normal(const shape& s, ssl::rng& g, float scale = 1.0f) {
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * g.normal();
  return t;
}
}  // namespace

TEST_CASE("layer_scale: y = x * gamma per channel, gamma starts at the init value, no weight decay") {
  ssl::layer_scale<> ls(3, 1e-5f);
  auto params = ssl::parameters(ls);
  REQUIRE(params.size() == 1);
  CHECK(params[0].name == "gamma");
  CHECK(params[0].p->is_bias_or_norm());  // DINOv2's param groups give gamma no weight decay
  for (int64_t c = 0; c < 3; ++c) CHECK(ls.gamma().value[c] == 1e-5f);
  ls.gamma().value[0] = 2.0f;
  ls.gamma().value[1] = -1.0f;
  ls.gamma().value[2] = 0.5f;
  T x(shape{2, 2, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i + 1);
  const T y = ls.infer(x);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(y[i] == x[i] * ls.gamma().value[i % 3]);
  // backward: dx = dy gamma, dgamma[c] = sum over rows of x dy
  auto o = ls.forward(x);
  T dy(x.shape(), 1.0f);
  const T dx = ls.backward(o.saved, dy);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(dx[i] == ls.gamma().value[i % 3]);
  CHECK(ls.gamma().grad[0] == 1.0f + 4.0f + 7.0f + 10.0f);
  CHECK(ls.gamma().grad[2] == 3.0f + 6.0f + 9.0f + 12.0f);
}

TEST_CASE("layer_scale passes the gradient check; bad shapes and options are typed errors") {
  ssl::rng g(3);
  ssl::layer_scale<> ls(5, 0.3f);
  ls.gamma().value = normal(shape{5}, g);
  ssl::testing::gradient_check_options o;
  o.eps = 1e-2;
  auto r = ssl::testing::check_module_gradients(ls, normal(shape{3, 4, 5}, g), o);
  INFO(r.report());
  CHECK(r.ok());
  CHECK_THROWS_AS(ls.infer(T(shape{3, 4})), ssl::shape_error);
  CHECK_THROWS_AS(ssl::layer_scale<>(0, 1e-5f), ssl::value_error);
  CHECK_THROWS_AS(ssl::transformer_block<>({.dim = 8, .heads = 2, .layer_scale = -1.0f}), ssl::value_error);
  ssl::transformer_block<> plain({.dim = 8, .heads = 2});
  CHECK_FALSE(plain.has_layer_scale());
  CHECK_THROWS_AS(plain.ls1(), ssl::value_error);
}

TEST_CASE("transformer_block with LayerScale passes the gradient check (gammas included)") {
  ssl::transformer_block<> blk({.dim = 8, .heads = 2, .mlp_ratio = 2.0f, .init_std = 0.3f, .layer_scale = 0.5f},
                               ssl::rng(5));
  ssl::rng g(6);
  blk.ls1().gamma().value = normal(shape{8}, g, 0.7f);
  blk.ls2().gamma().value = normal(shape{8}, g, 0.7f);
  ssl::testing::gradient_check_options o;
  o.eps = 5e-3;
  o.max_checks = 16;
  auto r = ssl::testing::check_module_gradients(blk, normal(shape{2, 4, 8}, g), o);
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("a LayerScale block starts near the identity: init 1e-5 moves the tokens by about 1e-5") {
  ssl::rng g(9);
  const T x = normal(shape{2, 5, 16}, g);
  ssl::transformer_block<> blk({.dim = 16, .heads = 2, .layer_scale = 1e-5f}, ssl::rng(2));
  const T y = blk.infer(x);
  double max_change = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) max_change = std::max(max_change, double(std::abs(y[i] - x[i])));
  CHECK(max_change > 0.0);
  CHECK(max_change < 1e-4);
}
