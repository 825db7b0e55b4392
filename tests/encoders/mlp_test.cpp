#include <catch2/catch.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

static_assert(ssl::Encoder<ssl::mlp_encoder<>>, "mlp_encoder must satisfy ssl::Encoder");

TEST_CASE("mlp_encoder matches PyTorch Flatten-Linear-ReLU-Linear-ReLU given the same weights") {
  ssl_test::fixture fx("nn/basic_mlp.json");
  ssl::mlp_encoder<> enc(16, {8, 6}, 3);
  CHECK(enc.feature_dim() == 6);
  CHECK(enc.depth() == 2);
  auto params = ssl::parameters(enc);
  REQUIRE(params.size() == 4);
  for (auto& p : params) p.p->value = fx.tensor(p.name);  // names match PyTorch-style "layers.<i>.weight"
  auto [y, saved] = enc.forward(fx.tensor("x"));
  REQUIRE(y.shape() == shape{3, 6});
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(enc.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-4);
  const T dx = enc.backward(saved, fx.tensor("dy"));
  REQUIRE(dx.shape() == shape{3, 1, 4, 4});
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  for (int i = 0; i < 2; ++i) {
    const std::string l = "layers." + std::to_string(i);
    CHECK(ssl_test::rel_error(enc.layer(i).weight().grad, fx.tensor(l + ".dweight")) <= 1e-4);
    CHECK(ssl_test::rel_error(enc.layer(i).bias().grad, fx.tensor(l + ".dbias")) <= 1e-4);
  }
}

TEST_CASE("mlp_encoder passes the gradient check on image-shaped input") {
  ssl::mlp_encoder<> enc(12, {10, 5}, 4);
  ssl::rng g(2);
  T x(shape{3, 1, 3, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  ssl::testing::gradient_check_options o;
  o.max_checks = 36;
  auto r = ssl::testing::check_module_gradients(enc, x, o);
  INFO(r.report());
  CHECK(r.ok());
  CHECK(ssl::parameter_count(enc) == 12 * 10 + 10 + 10 * 5 + 5);
}

TEST_CASE("mlp_encoder init is reproducible from the seed") {
  ssl::mlp_encoder<> a(20, {7}, 9), b(20, {7}, 9), c(20, {7}, 10);
  CHECK(a.layer(0).weight().value.to_vector() == b.layer(0).weight().value.to_vector());
  CHECK(a.layer(0).weight().value.to_vector() != c.layer(0).weight().value.to_vector());
}

TEST_CASE("mlp_encoder rejects inputs with the wrong number of features and bad configs") {
  ssl::mlp_encoder<> enc(784, {32, 16});
  try {
    (void)enc.forward(T(shape{2, 1, 28, 27}, 0.0f));
    FAIL("no throw");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("784") != std::string::npos);
    CHECK(msg.find("(2, 1, 28, 27)") != std::string::npos);
  }
  CHECK(enc.infer(T(shape{2, 1, 28, 28}, 0.5f)).shape() == shape{2, 16});
  CHECK_THROWS_AS(ssl::mlp_encoder<>(784, {}), ssl::value_error);
  CHECK_THROWS_AS(ssl::mlp_encoder<>(0, {4}), ssl::value_error);
}
