#include <catch2/catch.hpp>
#include <ssl/nn/flatten.hpp>
#include <ssl/testing/gradient_check.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("flatten maps (N, ...) to (N, prod) keeping row-major order, and back") {
  ssl::flatten<> fl;
  T x(shape{2, 3, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i);
  auto [y, saved] = fl.forward(x);
  REQUIRE(y.shape() == shape{2, 12});
  CHECK(y.at(1, 5) == x.at(1, 1, 0, 1));
  CHECK(fl.infer(x).shape() == shape{2, 12});
  T dy(shape{2, 12});
  for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = 0.5f * float(i);
  const T dx = fl.backward(saved, dy);
  REQUIRE(dx.shape() == x.shape());
  CHECK(dx.at(1, 2, 1, 0) == dy.at(1, 10));
}

TEST_CASE("flatten passes the gradient check") {
  ssl::rng g(6);
  T x(shape{3, 2, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  ssl::flatten<> fl;
  auto r = ssl::testing::check_module_gradients(fl, x);
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("flatten rejects a gradient of the wrong shape and rank-0 inputs") {
  ssl::flatten<> fl;
  auto f = fl.forward(T(shape{2, 3, 4}, 1.0f));
  try {
    (void)fl.backward(f.saved, T(shape{2, 3, 4}, 1.0f));
    FAIL("no throw");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("(2, 12)") != std::string::npos);
    CHECK(msg.find("(2, 3, 4)") != std::string::npos);
  }
  CHECK_THROWS_AS(fl.infer(T(shape{}, 1.0f)), ssl::shape_error);
}
