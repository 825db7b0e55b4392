#include <catch2/catch.hpp>
#include <ssl/nn/avg_pool2d.hpp>
#include <ssl/nn/global_avg_pool.hpp>
#include <ssl/nn/max_pool2d.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
T random_tensor(const shape& s, uint64_t seed) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
  return t;
}

template <class M>
void check_against_fixture(M& m, const std::string& file) {
  ssl_test::fixture fx(file);
  const T x = fx.tensor("x");
  auto [y, saved] = m.forward(x);
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(m.infer(x), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(m.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
}
}  // namespace

TEST_CASE("pooling layers match PyTorch") {
  SECTION("max_pool2d 3x3 stride 2 pad 1") {
    ssl::max_pool2d<> m(3, 2, 1);
    check_against_fixture(m, "nn/conv_max_pool2d.json");
  }
  SECTION("avg_pool2d 3x3 stride 2 pad 1 (padding counted)") {
    ssl::avg_pool2d<> m(3, 2, 1);
    check_against_fixture(m, "nn/conv_avg_pool2d.json");
  }
  SECTION("avg_pool2d 2x2, odd width") {
    ssl::avg_pool2d<> m(2);
    check_against_fixture(m, "nn/conv_avg_pool2d_k2.json");
  }
  SECTION("global_avg_pool") {
    ssl::global_avg_pool<> m;
    check_against_fixture(m, "nn/conv_global_avg_pool.json");
  }
}

TEST_CASE("pooling gradients pass the finite-difference check") {
  // max pooling: distinct, well separated values so eps cannot change the argmax
  T x(shape{2, 2, 5, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float((i * 37) % 80) * 0.05f;
  ssl::testing::gradient_check_options o;
  o.max_checks = 80;
  ssl::max_pool2d<> mp(3, 2, 1);
  auto r1 = ssl::testing::check_module_gradients(mp, x, o);
  INFO(r1.report());
  CHECK(r1.ok());
  ssl::avg_pool2d<> ap(3, 2, 1);
  auto r2 = ssl::testing::check_module_gradients(ap, random_tensor(shape{2, 2, 5, 4}, 1), o);
  INFO(r2.report());
  CHECK(r2.ok());
  ssl::global_avg_pool<> gp;
  auto r3 = ssl::testing::check_module_gradients(gp, random_tensor(shape{2, 3, 3, 2}, 2), o);
  INFO(r3.report());
  CHECK(r3.ok());
}

TEST_CASE("pooling rejects bad shapes and settings") {
  ssl::max_pool2d<> mp(3, 2, 1);
  CHECK_THROWS_AS(mp.forward(T(shape{2, 3, 4}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(mp.infer(T(shape{2, 3, 4}, 0.0f)),
                    Catch::Matchers::Contains("expected input (N, C, H, W)") && Catch::Matchers::Contains("(2, 3, 4)"));
  CHECK_THROWS_AS(ssl::avg_pool2d<>(2, 1, 2), ssl::value_error);
  ssl::avg_pool2d<> ap(4);
  CHECK_THROWS_AS(ap.infer(T(shape{1, 1, 3, 3}, 0.0f)), ssl::shape_error);
  ssl::global_avg_pool<> gp;
  CHECK_THROWS_AS(gp.infer(T(shape{2, 3}, 0.0f)), ssl::shape_error);
  auto o = gp.forward(T(shape{2, 3, 2, 2}, 1.0f));
  CHECK_THROWS_AS(gp.backward(o.saved, T(shape{2, 4}, 0.0f)), ssl::shape_error);
}
