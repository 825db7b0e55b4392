#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/nn/batch_norm.hpp>
#include <ssl/nn/conv2d.hpp>
#include <ssl/nn/max_pool2d.hpp>
#include <ssl/nn/sequential.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
T random_tensor(const shape& s, uint64_t seed, float scale = 1.0f, float shift = 0.0f) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = shift + scale * g.normal();
  return t;
}

// One train step (forward + backward) and one eval forward, compared with PyTorch.
void check_against_fixture(const std::string& file, bool relu) {
  ssl_test::fixture fx(file);
  const T w = fx.tensor("weight");
  ssl::batch_norm<> bn({.channels = w.numel(), .relu = relu});
  bn.weight().value = w;
  bn.bias().value = fx.tensor("bias");
  bn.running_mean() = fx.tensor("running_mean0");
  bn.running_var() = fx.tensor("running_var0");
  const T x = fx.tensor("x");
  auto [y, saved] = bn.forward(x);
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  const T dx = bn.backward(saved, fx.tensor("dy"));
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  CHECK(ssl_test::rel_error(bn.weight().grad, fx.tensor("dweight")) <= 1e-4);
  CHECK(ssl_test::rel_error(bn.bias().grad, fx.tensor("dbias")) <= 1e-4);
  CHECK(ssl_test::rel_error(bn.running_mean(), fx.tensor("running_mean1")) <= 1e-4);
  CHECK(ssl_test::rel_error(bn.running_var(), fx.tensor("running_var1")) <= 1e-4);
  CHECK(bn.num_batches_tracked() == 1);
  CHECK(ssl_test::rel_error(bn.infer(x), fx.tensor("y_eval")) <= 1e-4);
}
}  // namespace

TEST_CASE("batch_norm matches PyTorch: train step, running stats, eval") {
  SECTION("2-D (N, C, H, W)") { check_against_fixture("nn/conv_batch_norm2d.json", false); }
  SECTION("1-D (N, C)") { check_against_fixture("nn/conv_batch_norm1d.json", false); }
  SECTION("fused with ReLU") { check_against_fixture("nn/conv_batch_norm2d_relu.json", true); }
}

TEST_CASE("batch_norm with momentum nullopt keeps a cumulative average (BN recalibration)") {
  ssl_test::fixture fx("nn/conv_batch_norm_cumulative.json");
  ssl::batch_norm<> bn({.channels = 3, .momentum = std::nullopt});
  bn.running_mean().fill(5.0f);  // reset_running_stats must clear this
  bn.reset_running_stats();
  for (const char* name : {"x1", "x2", "x3"}) bn.forward(fx.tensor(name));
  CHECK(bn.num_batches_tracked() == 3);
  CHECK(ssl_test::rel_error(bn.running_mean(), fx.tensor("running_mean")) <= 1e-4);
  CHECK(ssl_test::rel_error(bn.running_var(), fx.tensor("running_var")) <= 1e-4);
}

TEST_CASE("batch_norm gradients pass the finite-difference check") {
  SECTION("(N, C, H, W)") {
    ssl::batch_norm<> bn(3);
    bn.weight().value = random_tensor(shape{3}, 1, 0.3f, 1.0f);
    bn.bias().value = random_tensor(shape{3}, 2, 0.3f);
    auto r = ssl::testing::check_module_gradients(bn, random_tensor(shape{3, 3, 3, 2}, 3, 2.0f));
    INFO(r.report());
    CHECK(r.ok());
  }
  SECTION("(N, C)") {
    ssl::batch_norm<> bn(4);
    bn.weight().value = random_tensor(shape{4}, 4, 0.3f, 1.0f);
    auto r = ssl::testing::check_module_gradients(bn, random_tensor(shape{5, 4}, 5, 2.0f));
    INFO(r.report());
    CHECK(r.ok());
  }
}

TEST_CASE("batch_norm lists weight and bias as norm parameters and running stats as buffers") {
  ssl::batch_norm<> bn(8);
  auto params = ssl::parameters(bn, "bn");
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "bn.weight");
  CHECK(params[1].name == "bn.bias");
  CHECK(params[0].p->kind == ssl::param_kind::norm);
  CHECK(params[1].p->is_bias_or_norm());
  CHECK(params[0].p->value.to_vector() == std::vector<float>(8, 1.0f));
  CHECK(params[1].p->value.to_vector() == std::vector<float>(8, 0.0f));
  std::vector<std::pair<std::string, T*>> buffers;
  bn.collect_buffers(buffers, "bn");
  REQUIRE(buffers.size() == 3);
  CHECK(buffers[0].first == "bn.running_mean");
  CHECK(buffers[1].first == "bn.running_var");
  CHECK(buffers[2].first == "bn.num_batches_tracked");
  CHECK(buffers[1].second->to_vector() == std::vector<float>(8, 1.0f));
}

TEST_CASE("batch_norm rejects wrong channel counts, ranks and single-value batches") {
  ssl::batch_norm<> bn(4);
  CHECK_THROWS_AS(bn.forward(T(shape{2, 3, 4, 4}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(bn.infer(T(shape{2, 3, 4, 4}, 0.0f)),
                    Catch::Matchers::Contains("expected input (N, 4)") && Catch::Matchers::Contains("(2, 3, 4, 4)"));
  CHECK_THROWS_AS(bn.forward(T(shape{2, 4, 3}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_AS(bn.forward(T(shape{1, 4}, 0.0f)), ssl::value_error);
  CHECK_THROWS_AS(ssl::batch_norm<>({.channels = 4, .momentum = 1.5f}), ssl::value_error);
}

TEST_CASE("sequential forwards collect_buffers to the layers that have it") {
  ssl::sequential<ssl::conv2d<>, ssl::batch_norm<>, ssl::max_pool2d<>> seq(
      ssl::conv2d<>({.in_channels = 1, .out_channels = 2, .kernel = 3, .padding = 1}, ssl::rng(1)),
      ssl::batch_norm<>(2), ssl::max_pool2d<>(2));
  std::vector<std::pair<std::string, T*>> buffers;
  seq.collect_buffers(buffers, "net");
  REQUIRE(buffers.size() == 3);
  CHECK(buffers[0].first == "net.1.running_mean");
  auto o = seq.forward(random_tensor(shape{2, 1, 4, 4}, 7, 1.0f, 3.0f));
  CHECK(o.y.shape() == shape{2, 2, 2, 2});
  CHECK(buffers[0].second->vec().norm() > 0);  // the train-mode pass moved the running mean
}
