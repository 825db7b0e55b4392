#include <catch2/catch.hpp>
#include <ssl/nn/layer_norm.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
void check_against_fixture(const std::string& file) {
  ssl_test::fixture fx(file);
  const T w = fx.tensor("weight");
  ssl::layer_norm<> ln(w.numel(), fx.scalar("eps"));
  ln.weight().value = w;
  ln.bias().value = fx.tensor("bias");
  auto [y, saved] = ln.forward(fx.tensor("x"));
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(ln.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(ln.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
  CHECK(ssl_test::rel_error(ln.weight().grad, fx.tensor("dweight")) <= 1e-4);
  CHECK(ssl_test::rel_error(ln.bias().grad, fx.tensor("dbias")) <= 1e-4);
}
}  // namespace

TEST_CASE("layer_norm matches PyTorch (eps 1e-5 on tokens, eps 1e-6 on small-variance rows)") {
  SECTION("tokens, eps 1e-5") { check_against_fixture("nn/basic_layer_norm.json"); }
  SECTION("small variance, eps 1e-6") { check_against_fixture("nn/basic_layer_norm_eps.json"); }
}

TEST_CASE("layer_norm passes the gradient check for input, weight and bias") {
  ssl::rng g(8);
  // Many rows so that the row blocks of the backward pass are exercised (R = 70 > 32).
  T x(shape{2, 35, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = 1.5f * g.normal() + 0.3f;
  ssl::layer_norm<> ln(6, 1e-6f);
  for (int64_t i = 0; i < 6; ++i) {
    ln.weight().value[i] = 1.0f + 0.3f * g.normal();
    ln.bias().value[i] = 0.3f * g.normal();
  }
  ssl::testing::gradient_check_options o;
  o.eps = 5e-3;
  o.max_checks = 48;
  auto r = ssl::testing::check_module_gradients(ln, x, o);
  INFO(r.report());
  CHECK(r.ok());
  auto params = ssl::parameters(ln, "norm");
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "norm.weight");
  CHECK(params[1].name == "norm.bias");
  CHECK(params[0].p->kind == ssl::param_kind::norm);
  CHECK(params[1].p->kind == ssl::param_kind::norm);
}

TEST_CASE("layer_norm defaults: weight 1, bias 0, eps 1e-5; output rows have mean 0 and variance 1") {
  ssl::layer_norm<> ln(16);
  CHECK(ln.eps() == 1e-5f);
  ssl::rng g(9);
  T x(shape{3, 16});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = 4.0f * g.normal() - 2.0f;
  const T y = ln.infer(x);
  for (int64_t r = 0; r < 3; ++r) {
    double m = 0, v = 0;
    for (int64_t d = 0; d < 16; ++d) m += y.at(r, d);
    m /= 16;
    for (int64_t d = 0; d < 16; ++d) v += (y.at(r, d) - m) * (y.at(r, d) - m);
    CHECK(m == Approx(0.0).margin(1e-5));
    CHECK(v / 16 == Approx(1.0).epsilon(1e-4));
  }
}

TEST_CASE("layer_norm rejects inputs whose last dimension is not the normalized size") {
  ssl::layer_norm<> ln(8);
  try {
    (void)ln.forward(T(shape{4, 7}, 1.0f));
    FAIL("no throw");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("(..., 8)") != std::string::npos);
    CHECK(msg.find("(4, 7)") != std::string::npos);
  }
  CHECK_THROWS_AS(ssl::layer_norm<>(0), ssl::value_error);
}
