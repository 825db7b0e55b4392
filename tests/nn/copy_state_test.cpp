// copy_state(src, dst): parameter values and buffers of one module copied into another of the
// same architecture (the CPU half; tests/cuda/method_backend_test.cu crosses the backends).
#include <catch2/catch.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/nn/copy_state.hpp>

#include "../data/error_message.hpp"

using namespace ssl;

TEST_CASE("copy_state copies parameters and BN running statistics, not gradients") {
  convnet_s<> src(1, rng(1)), dst(1, rng(2));
  tensor<cpu> x(shape{3, 1, 12, 12});
  rng g(5);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  (void)src.forward(x);  // moves src's running statistics; counter = 1
  param_list<cpu> dp;
  dst.collect(dp, "");
  dp[0].p->grad.fill(3.0f);
  REQUIRE(src.infer(x).at(0, 0) != dst.infer(x).at(0, 0));

  copy_state(src, dst);
  const tensor<cpu> a = src.infer(x), b = dst.infer(x);  // eval mode: uses the running statistics
  for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == b[i]);
  CHECK(dst.bn(3).num_batches_tracked() == 1);
  CHECK(dp[0].p->grad[0] == 3.0f);  // gradients are left alone
}

TEST_CASE("copy_state between different architectures is a typed error naming the mismatch") {
  convnet_s<> one(1), three(3);
  CHECK_THROWS_AS(copy_state(one, three), shape_error);
  CHECK_THAT(ssl_test::message_of<shape_error>([&] { copy_state(one, three); }),
             Catch::Contains("'0.weight'") && Catch::Contains("(32, 1, 3, 3)") && Catch::Contains("(32, 3, 3, 3)"));
  projection_mlp<> two({.in_dim = 8, .hidden_dim = 8, .out_dim = 4, .layers = 2});
  projection_mlp<> three_layers({.in_dim = 8, .hidden_dim = 8, .out_dim = 4, .layers = 3});
  CHECK_THROWS_AS(copy_state(two, three_layers), value_error);
  mlp_encoder<> m(16, {8, 4}, 1);
  CHECK_THROWS_AS(copy_state(two, m), value_error);
}
