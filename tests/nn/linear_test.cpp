#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/nn/linear.hpp>
#include <ssl/nn/relu.hpp>
#include <ssl/nn/sequential.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
T random_tensor(const shape& s, uint64_t seed, float scale = 1.0f) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * g.normal();
  return t;
}

// Loads weights from a fixture, runs forward + backward and compares y, dx, dW, db with PyTorch.
void check_against_fixture(const std::string& file) {
  ssl_test::fixture fx(file);
  const T w = fx.tensor("weight");
  const bool with_bias = fx.has("bias");
  ssl::linear<> lin(w.dim(1), w.dim(0), with_bias, 99);
  lin.weight().value = w;
  if (with_bias) lin.bias().value = fx.tensor("bias");
  auto [y, saved] = lin.forward(fx.tensor("x"));
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(lin.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-4);
  const T dx = lin.backward(saved, fx.tensor("dy"));
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  CHECK(ssl_test::rel_error(lin.weight().grad, fx.tensor("dweight")) <= 1e-4);
  if (with_bias) CHECK(ssl_test::rel_error(lin.bias().grad, fx.tensor("dbias")) <= 1e-4);
}
}  // namespace

TEST_CASE("linear matches PyTorch: (N, in), (N, T, in) tokens, no bias") {
  SECTION("rows") { check_against_fixture("nn/basic_linear.json"); }
  SECTION("tokens") { check_against_fixture("nn/basic_linear_tokens.json"); }
  SECTION("no bias") { check_against_fixture("nn/basic_linear_nobias.json"); }
}

TEST_CASE("linear gradients pass the finite-difference check") {
  SECTION("rows with bias") {
    ssl::linear<> lin(7, 5, true, 1);
    auto r = ssl::testing::check_module_gradients(lin, random_tensor(shape{4, 7}, 2));
    INFO(r.report());
    CHECK(r.ok());
  }
  SECTION("tokens without bias") {
    ssl::linear<> lin(6, 3, false, 3);
    auto r = ssl::testing::check_module_gradients(lin, random_tensor(shape{2, 5, 6}, 4));
    INFO(r.report());
    CHECK(r.ok());
  }
}

TEST_CASE("linear accumulates gradients over two forward calls of different batch sizes") {
  ssl::linear<> lin(5, 4, true, 7);
  const T xa = random_tensor(shape{3, 5}, 10), xb = random_tensor(shape{6, 5}, 11);
  const T dya = random_tensor(shape{3, 4}, 12), dyb = random_tensor(shape{6, 4}, 13);

  // Separate passes, grads zeroed in between.
  ssl::zero_grad(lin);
  lin.backward(lin.forward(xa).saved, dya);
  const T wa = lin.weight().grad, ba = lin.bias().grad;
  ssl::zero_grad(lin);
  lin.backward(lin.forward(xb).saved, dyb);
  const T wb = lin.weight().grad, bb = lin.bias().grad;

  // Both forwards first, then both backwards (in reverse order) without zeroing.
  ssl::zero_grad(lin);
  auto fa = lin.forward(xa);
  auto fb = lin.forward(xb);
  CHECK(fb.y.shape() == shape{6, 4});
  lin.backward(fb.saved, dyb);
  lin.backward(fa.saved, dya);
  T wsum = wa, bsum = ba;
  wsum.vec() += wb.vec();
  bsum.vec() += bb.vec();
  CHECK(ssl_test::rel_error(lin.weight().grad, wsum) <= 1e-6);
  CHECK(ssl_test::rel_error(lin.bias().grad, bsum) <= 1e-6);
  CHECK(ssl_test::rel_error(lin.weight().grad, wa) > 1e-3);  // the second pass really added something
}

TEST_CASE("linear forward on a temporary keeps the input in the saved state without changing results") {
  ssl::linear<> lin(5, 3, true, 8);
  const T x = random_tensor(shape{4, 5}, 30), dy = random_tensor(shape{4, 3}, 31);
  auto by_ref = lin.forward(x);
  auto by_move = lin.forward(T(x));
  CHECK(by_move.y.to_vector() == by_ref.y.to_vector());
  CHECK(by_move.saved.x.to_vector() == x.to_vector());
  CHECK(lin.backward(by_move.saved, dy).to_vector() == lin.backward(by_ref.saved, dy).to_vector());
}

TEST_CASE("linear rejects inputs of the wrong width, naming both shapes") {
  ssl::linear<> lin(4, 3);
  CHECK(lin.in_features() == 4);
  CHECK(lin.out_features() == 3);
  try {
    (void)lin.forward(T(shape{2, 5}, 1.0f));
    FAIL("no throw");
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("(N, 4)") != std::string::npos);
    CHECK(msg.find("(2, 5)") != std::string::npos);
  }
  CHECK_THROWS_AS(lin.infer(T(shape{4}, 1.0f)), ssl::shape_error);
  auto f = lin.forward(T(shape{2, 4}, 1.0f));
  CHECK_THROWS_AS(lin.backward(f.saved, T(shape{2, 4}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(ssl::linear<>(0, 3), ssl::value_error);
}

TEST_CASE("linear init: PyTorch default bounds, reproducible, trunc_normal and xavier re-init") {
  ssl::linear<> a(64, 32, true, 5), b(64, 32, true, 5), c(64, 32, true, 6);
  const float bound = 1.0f / 8.0f;
  CHECK(a.weight().value.vec().cwiseAbs().maxCoeff() <= bound);
  CHECK(a.bias().value.vec().cwiseAbs().maxCoeff() <= bound);
  CHECK(a.weight().value.vec().cwiseAbs().maxCoeff() > 0.9f * bound);
  CHECK(a.weight().value.to_vector() == b.weight().value.to_vector());
  CHECK(a.weight().value.to_vector() != c.weight().value.to_vector());

  a.reset_trunc_normal(0.02f, ssl::rng(1));
  const auto& w = a.weight().value;
  const double mean = w.vec().mean();
  const double sd = std::sqrt((w.vec().array() - float(mean)).square().mean());
  CHECK(std::abs(mean) < 0.002);
  CHECK(sd == Approx(0.02).epsilon(0.1));
  CHECK(a.bias().value.vec().cwiseAbs().maxCoeff() == 0.0f);

  a.reset_xavier_uniform(ssl::rng(2));
  const float xb = std::sqrt(6.0f / (64 + 32));
  CHECK(a.weight().value.vec().cwiseAbs().maxCoeff() <= xb);
  CHECK(a.weight().value.vec().cwiseAbs().maxCoeff() > 0.9f * xb);

  auto names = ssl::parameters(a, "fc");
  REQUIRE(names.size() == 2);
  CHECK(names[0].name == "fc.weight");
  CHECK(names[1].name == "fc.bias");
  CHECK(names[1].p->kind == ssl::param_kind::bias);
  ssl::linear<> no_bias(3, 2, false);
  CHECK(ssl::parameters(no_bias).size() == 1);
}

TEST_CASE("sequential<linear, relu, linear> passes the gradient check") {
  ssl::sequential<ssl::linear<>, ssl::relu<>, ssl::linear<>> net(ssl::linear<>(6, 8, true, 1), ssl::relu<>{},
                                                                  ssl::linear<>(8, 3, true, 2));
  static_assert(ssl::Module<decltype(net)>);
  auto names = ssl::parameters(net);
  REQUIRE(names.size() == 4);
  CHECK(names[2].name == "2.weight");
  ssl::testing::gradient_check_options o;
  o.max_checks = 48;
  auto r = ssl::testing::check_module_gradients(net, random_tensor(shape{5, 6}, 21), o);
  INFO(r.report());
  CHECK(r.ok());
  CHECK(ssl_test::rel_error(net.infer(random_tensor(shape{5, 6}, 21)), net.forward(random_tensor(shape{5, 6}, 21)).y) <=
        1e-6);
}
