// KoLeo and the triplet loss on the device against ssl::koleo / ssl::triplet.
#include <ssl/losses/koleo.hpp>
#include <ssl/losses/triplet.hpp>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;
using ssl_cuda_test::value_rel_diff;

TEST_CASE("cuda: KoLeo loss and gradient match ssl::koleo") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [N, D, close_pair] :
       {std::tuple{2, 4, false}, std::tuple{32, 8, false}, std::tuple{300, 64, false}, std::tuple{16, 8, true}}) {
    INFO("N " << N << " D " << D << " close pair " << close_pair);
    tensor<cpu> x = random(shape{N, D}, 100);
    if (close_pair) {  // row 5 a small perturbation of row 3: mutual nearest neighbours, a short distance
      const tensor<cpu> noise = random(shape{D}, 101, -0.05f, 0.05f);
      for (int64_t k = 0; k < D; ++k) x[5 * D + k] = x[3 * D + k] + noise[k];
    }
    const koleo_result ref = koleo()(x);
    const ops::koleo_device_result got = ops::koleo_loss(to_device(x));
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_x, ref.grad_x) < 1e-4);
  }
  CHECK_THROWS_AS(ops::koleo_loss(ops::full(shape{1, 4}, 1.0f)), shape_error);
}

TEST_CASE("cuda: triplet loss (squared Euclidean and cosine) matches ssl::triplet") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto distance : {triplet_distance::squared_euclidean, triplet_distance::cosine})
    for (const auto& [N, D, margin] : {std::tuple{40, 16, 1.0f}, std::tuple{7, 300, 0.2f}, std::tuple{64, 3, 0.0f}}) {
      INFO("N " << N << " D " << D << " margin " << margin << " cosine " << (distance == triplet_distance::cosine));
      const tensor<cpu> a = random(shape{N, D}, 110), p = random(shape{N, D}, 111), n = random(shape{N, D}, 112);
      const triplet_result ref = triplet(margin, distance)(a, p, n);
      const ops::triplet_device_result got = ops::triplet_loss(to_device(a), to_device(p), to_device(n), margin, distance);
      CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
      CHECK(rel_diff(got.grad_anchor, ref.grad_anchor) < 1e-4);
      CHECK(rel_diff(got.grad_positive, ref.grad_positive) < 1e-4);
      CHECK(rel_diff(got.grad_negative, ref.grad_negative) < 1e-4);
    }
  const tensor<cuda> a = ops::full(shape{4, 8}, 1.0f);
  CHECK_THROWS_AS(ops::triplet_loss(a, a, ops::full(shape{4, 7}, 1.0f)), shape_error);
}

TEST_CASE("cuda: KoLeo / triplet reject bad hyper-parameters and empty inputs before any device work") {
  // Runs without a GPU: zero-element device tensors allocate nothing.
  const tensor<cuda> none = empty_device(shape{0, 8});
  CHECK_THROWS_AS(ops::koleo_loss(none, 0.0f), value_error);
  CHECK_THROWS_AS(ops::koleo_loss(none), shape_error);
  CHECK_THROWS_AS(ops::triplet_loss(none, none, none, -1.0f), value_error);
  CHECK_THROWS_AS(ops::triplet_loss(none, none, none), shape_error);
}
