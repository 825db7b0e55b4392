#include <catch2/catch.hpp>
#include <ssl/nn/relu.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("relu matches PyTorch forward and backward") {
  ssl_test::fixture fx("nn/basic_relu.json");
  ssl::relu<> act;
  auto [y, saved] = act.forward(fx.tensor("x"));
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(act.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(act.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
}

TEST_CASE("relu passes the gradient check away from the kink, on any shape") {
  ssl::rng g(4);
  T x(shape{2, 3, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = g.normal();
    x[i] = v + (v >= 0 ? 0.05f : -0.05f);  // |x| > eps of the finite differences
  }
  ssl::relu<> act;
  ssl::testing::gradient_check_options o;
  o.max_checks = 120;
  auto r = ssl::testing::check_module_gradients(act, x, o);
  INFO(r.report());
  CHECK(r.ok());
  CHECK(ssl::parameters(act).empty());
}

TEST_CASE("relu backward rejects a gradient of the wrong shape") {
  ssl::relu<> act;
  auto f = act.forward(T(shape{2, 3}, 1.0f));
  try {
    (void)act.backward(f.saved, T(shape{3, 2}, 1.0f));
    FAIL("no throw");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("(2, 3)") != std::string::npos);
    CHECK(msg.find("(3, 2)") != std::string::npos);
  }
}
