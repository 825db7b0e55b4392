// BYOL's normalised regression and SimSiam's negative cosine on the device against
// ssl::byol / ssl::simsiam.
#include <ssl/losses/byol.hpp>
#include <ssl/losses/simsiam.hpp>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;
using ssl_cuda_test::value_rel_diff;

TEST_CASE("cuda: BYOL and SimSiam losses and gradients match ssl::byol / ssl::simsiam") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [N, D, zero_row] :
       {std::tuple{5, 3, false}, std::tuple{64, 256, false}, std::tuple{512, 2048, false}, std::tuple{9, 17, true}}) {
    INFO("N " << N << " D " << D << " zero row " << zero_row);
    tensor<cpu> p = random(shape{N, D}, 70);
    const tensor<cpu> z = random(shape{N, D}, 71);
    if (zero_row)  // row 2 of p has norm 0: the clamped branch of the normalisation
      for (int64_t k = 0; k < D; ++k) p[2 * D + k] = 0.0f;
    const tensor<cuda> dp = to_device(p), dz = to_device(z);
    const cosine_regression_result rb = byol()(p, z);
    const ops::cosine_regression_device_result gb = ops::byol_loss(dp, dz);
    CHECK(value_rel_diff(gb.value, rb.value) < 1e-4);
    CHECK(rel_diff(gb.grad_p, rb.grad_p) < 1e-4);
    const cosine_regression_result rs = simsiam()(p, z);
    const ops::cosine_regression_device_result gs = ops::simsiam_loss(dp, dz);
    CHECK(value_rel_diff(gs.value, rs.value) < 1e-4);
    CHECK(rel_diff(gs.grad_p, rs.grad_p) < 1e-4);
  }
  CHECK_THROWS_AS(ops::byol_loss(ops::full(shape{4, 8}, 1.0f), ops::full(shape{4, 7}, 1.0f)), shape_error);
  CHECK_THROWS_AS(ops::simsiam_loss(ops::full(shape{3, 8}, 1.0f), ops::full(shape{4, 8}, 1.0f)), shape_error);
}

TEST_CASE("cuda: BYOL / SimSiam reject empty inputs before any device work") {
  // Runs without a GPU: zero-element device tensors allocate nothing.
  CHECK_THROWS_AS(ops::byol_loss(empty_device(shape{0, 8}), empty_device(shape{0, 8})), shape_error);
  CHECK_THROWS_AS(ops::simsiam_loss(empty_device(shape{4, 0}), empty_device(shape{4, 0})), shape_error);
  CHECK_THROWS_AS(ops::byol_loss(empty_device(shape{0}), empty_device(shape{0})), shape_error);
}
