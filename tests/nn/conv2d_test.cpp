#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/nn/conv2d.hpp>
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
  ssl::conv2d<> conv({.in_channels = w.dim(1), .out_channels = w.dim(0), .kernel = w.dim(2),
                      .stride = int64_t(fx.scalar("stride")), .padding = int64_t(fx.scalar("padding")),
                      .bias = with_bias},
                     ssl::rng(3));
  conv.weight().value = w;
  if (with_bias) conv.bias().value = fx.tensor("bias");
  const T x = fx.tensor("x");
  auto [y, saved] = conv.forward(x);
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(conv.infer(x), fx.tensor("y")) <= 1e-4);
  CHECK(conv.output_shape(x.shape()) == fx.tensor("y").shape());
  const T dx = conv.backward(saved, fx.tensor("dy"));
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  CHECK(ssl_test::rel_error(conv.weight().grad, fx.tensor("dweight")) <= 1e-4);
  if (with_bias) CHECK(ssl_test::rel_error(conv.bias().grad, fx.tensor("dbias")) <= 1e-4);
}
}  // namespace

TEST_CASE("conv2d matches PyTorch: strides, padding, 1x1 and 7x7 kernels") {
  SECTION("3x3 stride 2 pad 1 with bias") { check_against_fixture("nn/conv_conv2d_s2p1.json"); }
  SECTION("3x3 stride 1 no padding with bias") { check_against_fixture("nn/conv_conv2d_s1p0.json"); }
  SECTION("1x1 pointwise without bias") { check_against_fixture("nn/conv_conv2d_1x1.json"); }
  SECTION("7x7 stride 2 pad 3 (ResNet stem)") { check_against_fixture("nn/conv_conv2d_s2p3_k7.json"); }
}

TEST_CASE("conv2d gradients pass the finite-difference check") {
  SECTION("3x3 stride 2 pad 1 with bias") {
    ssl::conv2d<> conv({.in_channels = 3, .out_channels = 4, .kernel = 3, .stride = 2, .padding = 1}, ssl::rng(1));
    auto r = ssl::testing::check_module_gradients(conv, random_tensor(shape{2, 3, 6, 5}, 2));
    INFO(r.report());
    CHECK(r.ok());
  }
  SECTION("1x1 without bias") {
    ssl::conv2d<> conv({.in_channels = 3, .out_channels = 2, .kernel = 1, .bias = false}, ssl::rng(4));
    auto r = ssl::testing::check_module_gradients(conv, random_tensor(shape{3, 3, 4, 3}, 5));
    INFO(r.report());
    CHECK(r.ok());
  }
}

TEST_CASE("conv2d init is PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and reproducible") {
  const ssl::conv2d_options o{.in_channels = 8, .out_channels = 16, .kernel = 3};
  ssl::conv2d<> a(o, ssl::rng(7)), b(o, ssl::rng(7)), c(o, ssl::rng(8));
  const float bound = 1.0f / std::sqrt(72.0f);
  double sum2 = 0;
  float maxabs = 0;
  for (int64_t i = 0; i < a.weight().value.numel(); ++i) {
    const float v = a.weight().value[i];
    maxabs = std::max(maxabs, std::abs(v));
    sum2 += double(v) * v;
  }
  CHECK(maxabs <= bound);
  CHECK(maxabs > 0.9f * bound);
  // variance of U(-r, r) is r^2 / 3
  CHECK(sum2 / double(a.weight().value.numel()) == Approx(bound * bound / 3.0).epsilon(0.1));
  for (int64_t i = 0; i < a.bias().value.numel(); ++i) CHECK(std::abs(a.bias().value[i]) <= bound);
  CHECK(a.weight().value.to_vector() == b.weight().value.to_vector());
  CHECK(a.weight().value.to_vector() != c.weight().value.to_vector());
  auto params = ssl::parameters(a, "conv");
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "conv.weight");
  CHECK(params[1].name == "conv.bias");
  CHECK(params[1].p->kind == ssl::param_kind::bias);
}

TEST_CASE("conv2d accepts any spatial size and accumulates gradients over calls") {
  ssl::conv2d<> conv({.in_channels = 2, .out_channels = 3, .kernel = 3, .stride = 2, .padding = 1}, ssl::rng(9));
  const T big = random_tensor(shape{2, 2, 28, 28}, 10), small = random_tensor(shape{2, 2, 12, 12}, 11);
  auto ob = conv.forward(big);
  auto os = conv.forward(small);
  CHECK(ob.y.shape() == shape{2, 3, 14, 14});
  CHECK(os.y.shape() == shape{2, 3, 6, 6});
  const T dyb = random_tensor(ob.y.shape(), 12), dys = random_tensor(os.y.shape(), 13);
  conv.backward(ob.saved, dyb);
  const T g_big = conv.weight().grad;
  conv.weight().grad.zero();
  conv.backward(os.saved, dys);
  const T g_small = conv.weight().grad;
  conv.weight().grad.zero();
  conv.backward(ob.saved, dyb);
  conv.backward(os.saved, dys);
  T expected = g_big;
  expected.vec() += g_small.vec();
  CHECK(ssl_test::rel_error(conv.weight().grad, expected) <= 1e-6);
  CHECK(g_small.vec().norm() > 0);
}

TEST_CASE("conv2d rejects inputs with the wrong channel count or rank") {
  ssl::conv2d<> conv({.in_channels = 3, .out_channels = 4, .kernel = 3, .padding = 1}, ssl::rng(1));
  CHECK_THROWS_AS(conv.infer(T(shape{2, 2, 8, 8}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(conv.infer(T(shape{2, 2, 8, 8}, 0.0f)),
                    Catch::Matchers::Contains("expected input (N, 3, H, W)") && Catch::Matchers::Contains("(2, 2, 8, 8)"));
  CHECK_THROWS_AS(conv.forward(T(shape{2, 3, 8}, 0.0f)), ssl::shape_error);
  ssl::conv2d<> big({.in_channels = 1, .out_channels = 1, .kernel = 5}, ssl::rng(1));
  CHECK_THROWS_AS(big.infer(T(shape{1, 1, 3, 3}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(big.infer(T(shape{1, 1, 3, 3}, 0.0f)), Catch::Matchers::Contains("smaller than the kernel"));
  CHECK_THROWS_AS(ssl::conv2d<>({.in_channels = 0, .out_channels = 1, .kernel = 3}), ssl::value_error);
}
