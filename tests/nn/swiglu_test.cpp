#include <catch2/catch.hpp>
#include <ssl/nn/swiglu.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("swiglu (silu(a) * b over the halves of the last axis) matches PyTorch forward and backward") {
  ssl_test::fixture fx("nn/swiglu.json");  // x (2, 3, 10): a = x[..., :5], b = x[..., 5:]
  ssl::swiglu<> act;
  auto [y, saved] = act.forward(fx.tensor("x"));
  CHECK(y.shape() == shape{2, 3, 5});
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-5);
  CHECK(ssl_test::rel_error(act.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-5);
  CHECK(ssl_test::rel_error(act.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-5);
}

TEST_CASE("swiglu: the first half gates, the second half passes linearly") {
  // x = [a | b] with a = 0 -> silu(0) = 0 whatever b; b = 0 -> 0 whatever a; a large -> y ~ a b.
  T x(shape{1, 6}, 0.0f);
  x[1] = 20.0f, x[4] = 3.0f;  // a1 = 20, b1 = 3 -> y1 = 60 (sigmoid(20) = 1 - 2e-9)
  x[2] = -2.0f;               // a2 = -2, b2 = 0 -> 0
  x[3] = 7.0f;                // a0 = 0, b0 = 7 -> 0
  const T y = ssl::ops::swiglu_forward(x);
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == Approx(60.0f).epsilon(1e-6));
  CHECK(y[2] == 0.0f);
}

TEST_CASE("swiglu passes the gradient check, tokens (N, T, 2H) and rows wider than a block") {
  ssl::rng g(5);
  for (const shape& s : {shape{2, 7, 6}, shape{3, 20000}}) {
    T x(s);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = 2.0f * g.normal();
    ssl::swiglu<> act;
    ssl::testing::gradient_check_options o;
    o.max_checks = 84;
    auto r = ssl::testing::check_module_gradients(act, x, o);
    INFO(s << ": " << r.report());
    CHECK(r.ok());
  }
}

TEST_CASE("swiglu rejects an odd last axis and a gradient of the wrong shape") {
  ssl::swiglu<> act;
  CHECK_THROWS_AS(act.forward(T(shape{4, 3}, 0.5f)), ssl::shape_error);
  CHECK_THROWS_WITH(act.forward(T(shape{4, 3}, 0.5f)), Catch::Contains("even length") && Catch::Contains("(4, 3)"));
  auto f = act.forward(T(shape{4, 2}, 0.5f));
  CHECK(f.y.shape() == shape{4, 1});
  CHECK_THROWS_AS(act.backward(f.saved, T(shape{4, 2}, 1.0f)), ssl::shape_error);
}
