// The smooth L1 loss (I-JEPA's) on the device against ssl::smooth_l1.
#include <ssl/backend/cpu/layer_norm.hpp>
#include <ssl/losses/smooth_l1.hpp>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;
using ssl_cuda_test::value_rel_diff;

TEST_CASE("cuda: smooth L1 loss and gradient match ssl::smooth_l1", "[smooth_l1]") {
  SSL_REQUIRE_CUDA_DEVICE();
  // one partial block; a few blocks; the 1024-block cap (grid-stride); odd sizes and ranks
  for (const auto& [s, beta] : {std::tuple{shape{4, 9, 16}, 1.0f}, std::tuple{shape{4, 9, 16}, 0.5f},
                                std::tuple{shape{33}, 2.0f}, std::tuple{shape{7, 301}, 1.0f},
                                std::tuple{shape{64, 64, 384}, 1.0f}, std::tuple{shape{3, 5, 7, 11}, 0.25f}}) {
    INFO("shape " << s << " beta " << beta);
    const tensor<cpu> pred = random(s, 200, -3.0f, 3.0f), target = random(s, 201, -1.0f, 1.0f);
    const smooth_l1 loss(beta);
    const smooth_l1_result ref = loss(pred, target);
    const ops::smooth_l1_device_result got = loss(to_device(pred), to_device(target));  // via device_smooth_l1
    CHECK(value_rel_diff(got.value, ref.value) < 1e-5);
    CHECK(rel_diff(got.grad_pred, ref.grad_pred) < 1e-5);
    // deterministic: the same grid and the same fixed-order sums on a second call
    const auto again = ops::smooth_l1_loss(to_device(pred), to_device(target), beta);
    CHECK(to_host_scalar(again.value) == to_host_scalar(got.value));
  }
}

TEST_CASE("cuda: smooth L1 on I-JEPA's layer-normed targets matches ssl::smooth_l1", "[smooth_l1]") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 8, K = 49, D = 384;  // predictions for K target tokens of dim D
  const tensor<cpu> h = random(shape{N, K, D}, 210, -4.0f, 4.0f), pred = random(shape{N, K, D}, 211);
  const tensor<cpu> target = ops::layer_norm_forward(h, tensor<cpu>(shape{D}, 1.0f), tensor<cpu>(shape{D}, 0.0f), 1e-5f);
  const smooth_l1_result ref = smooth_l1()(pred, target);
  const auto got = ops::smooth_l1_loss(to_device(pred), to_device(target));
  CHECK(value_rel_diff(got.value, ref.value) < 1e-5);
  CHECK(rel_diff(got.grad_pred, ref.grad_pred) < 1e-5);
}

TEST_CASE("cuda: smooth L1 rejects bad beta and empty or mismatched inputs before any device work", "[smooth_l1]") {
  // Runs without a GPU: zero-element device tensors allocate nothing.
  const tensor<cuda> none = empty_device(shape{0, 8});
  CHECK_THROWS_AS(ops::smooth_l1_loss(none, none, 0.0f), value_error);
  CHECK_THROWS_AS(ops::smooth_l1_loss(none, none, -1.0f), value_error);
  CHECK_THROWS_AS(ops::smooth_l1_loss(none, none), shape_error);
  CHECK_THROWS_WITH(ops::smooth_l1_loss(none, empty_device(shape{0, 7})), Catch::Contains("(0, 8)"));
  CHECK_THROWS_AS(smooth_l1()(none, none), shape_error);
}
