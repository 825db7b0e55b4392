#include <catch2/catch.hpp>
#include <ssl/nn/gelu.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("gelu (exact erf form) matches PyTorch forward and backward") {
  ssl_test::fixture fx("nn/basic_gelu.json");
  ssl::gelu<> act;
  auto [y, saved] = act.forward(fx.tensor("x"));
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(act.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(act.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
}

TEST_CASE("gelu passes the gradient check, tokens (N, T, C)") {
  ssl::rng g(5);
  T x(shape{2, 7, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = 2.0f * g.normal();
  ssl::gelu<> act;
  ssl::testing::gradient_check_options o;
  o.max_checks = 84;
  auto r = ssl::testing::check_module_gradients(act, x, o);
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("gelu backward rejects a gradient of the wrong shape") {
  ssl::gelu<> act;
  auto f = act.forward(T(shape{4, 2}, 0.5f));
  CHECK_THROWS_AS(act.backward(f.saved, T(shape{8}, 1.0f)), ssl::shape_error);
}
