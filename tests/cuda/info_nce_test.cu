// InfoNCE (shared and per-anchor negatives), MoCo v2 (queue) and MoCo v3 on the device against
// ssl::info_nce / ssl::moco / ssl::moco_v3.
#include <ssl/losses/info_nce.hpp>
#include <ssl/losses/moco.hpp>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;
using ssl_cuda_test::value_rel_diff;

TEST_CASE("cuda: InfoNCE loss and all three gradients match ssl::info_nce") {
  SSL_REQUIRE_CUDA_DEVICE();
  // (N, D, M, per-anchor negatives, tau, gradient tolerance)
  for (const auto& [N, D, M, per_anchor, tau, tol] :
       {std::tuple{8, 16, 5, false, 0.1f, 1e-4}, std::tuple{8, 16, 5, true, 0.1f, 1e-4},
        std::tuple{33, 64, 17, true, 0.5f, 1e-4}, std::tuple{256, 128, 4096, false, 0.2f, 1e-3},
        std::tuple{4, 8, 0, false, 0.1f, 1e-4}}) {
    INFO("N " << N << " D " << D << " M " << M << " per-anchor " << per_anchor << " tau " << tau);
    const tensor<cpu> a = random(shape{N, D}, 40), p = random(shape{N, D}, 41);
    const tensor<cpu> n = per_anchor ? random(shape{N, M, D}, 42) : random(shape{M, D}, 42);
    const info_nce_result ref = info_nce(tau)(a, p, n);
    const ops::info_nce_device_result got = ops::info_nce_loss(to_device(a), to_device(p), to_device(n), tau);
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_anchor, ref.grad_anchor) < tol);
    CHECK(rel_diff(got.grad_positive, ref.grad_positive) < tol);
    CHECK(rel_diff(got.grad_negatives, ref.grad_negatives) < tol);
  }
  const tensor<cuda> a = ops::full(shape{4, 8}, 0.5f);
  CHECK_THROWS_AS(ops::info_nce_loss(a, ops::full(shape{4, 7}, 1.0f), ops::full(shape{3, 8}, 1.0f), 0.1f), shape_error);
  CHECK_THROWS_AS(ops::info_nce_loss(a, a, ops::full(shape{3, 7}, 1.0f), 0.1f), shape_error);
  CHECK_THROWS_AS(ops::info_nce_loss(a, a, ops::full(shape{5, 3, 8}, 1.0f), 0.1f), shape_error);
}

TEST_CASE("cuda: MoCo v2 (queue of negatives) matches ssl::moco") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [N, D, K, tau] : {std::tuple{16, 32, 64, 0.2f}, std::tuple{128, 128, 4096, 0.07f}}) {
    INFO("N " << N << " D " << D << " K " << K << " tau " << tau);
    const tensor<cpu> q = random(shape{N, D}, 50), k = random(shape{N, D}, 51);
    const moco_queue queue(K, D, 52);
    const moco_result ref = moco(tau)(q, k, queue);
    const ops::moco_device_result got = ops::moco_loss(to_device(q), to_device(k), to_device(queue.keys()), tau);
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_q, ref.grad_q) < (K > 1000 ? 1e-3 : 1e-4));
  }
  CHECK_THROWS_AS(ops::moco_loss(ops::full(shape{4, 8}, 1.0f), ops::full(shape{4, 8}, 1.0f),
                                 ops::full(shape{16, 9}, 1.0f)),
                  shape_error);
}

TEST_CASE("cuda: MoCo v3 (symmetric, in-batch keys) matches ssl::moco_v3") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [N, D, tau] : {std::tuple{8, 16, 1.0f}, std::tuple{256, 256, 0.2f}}) {
    INFO("N " << N << " D " << D << " tau " << tau);
    const tensor<cpu> q1 = random(shape{N, D}, 60), q2 = random(shape{N, D}, 61);
    const tensor<cpu> k1 = random(shape{N, D}, 62), k2 = random(shape{N, D}, 63);
    const moco_v3_result ref = moco_v3(tau)(q1, q2, k1, k2);
    const ops::moco_v3_device_result got =
        ops::moco_v3_loss(to_device(q1), to_device(q2), to_device(k1), to_device(k2), tau);
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_q1, ref.grad_q1) < 1e-4);
    CHECK(rel_diff(got.grad_q2, ref.grad_q2) < 1e-4);
  }
  const tensor<cuda> q = ops::full(shape{4, 8}, 1.0f);
  CHECK_THROWS_AS(ops::moco_v3_loss(q, q, q, ops::full(shape{4, 9}, 1.0f)), shape_error);
}

TEST_CASE("cuda: InfoNCE / MoCo reject bad hyper-parameters and empty inputs before any device work") {
  // Runs without a GPU: zero-element device tensors allocate nothing.
  const tensor<cuda> none = empty_device(shape{0, 8});
  CHECK_THROWS_AS(ops::info_nce_loss(none, none, none, 0.0f), value_error);
  CHECK_THROWS_AS(ops::info_nce_loss(none, none, none, 0.1f), shape_error);
  CHECK_THROWS_AS(ops::moco_loss(none, none, none, -1.0f), value_error);
  CHECK_THROWS_AS(ops::moco_loss(none, none, empty_device(shape{0}), 0.2f), shape_error);
  CHECK_THROWS_AS(ops::moco_v3_loss(none, none, none, none, 0.0f), value_error);
  CHECK_THROWS_AS(ops::moco_v3_loss(none, none, none, none, 0.2f), shape_error);
}
