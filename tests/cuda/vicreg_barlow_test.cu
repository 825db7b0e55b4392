// VICReg and Barlow Twins on the device against ssl::vicreg / ssl::barlow_twins.
#include <ssl/losses/barlow_twins.hpp>
#include <ssl/losses/vicreg.hpp>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;
using ssl_cuda_test::value_rel_diff;

TEST_CASE("cuda: VICReg loss and gradients match ssl::vicreg") {
  SSL_REQUIRE_CUDA_DEVICE();
  // spread: inputs in [-s, s); s = 1 puts every std below 1 (variance hinge active), s = 2.5 above.
  for (const auto& [N, D, spread] :
       {std::tuple{32, 16, 1.0f}, std::tuple{32, 16, 2.5f}, std::tuple{128, 256, 1.0f}, std::tuple{2, 5, 1.0f}}) {
    INFO("N " << N << " D " << D << " spread " << spread);
    const tensor<cpu> x = random(shape{N, D}, 80, -spread, spread), y = random(shape{N, D}, 81, -spread, spread);
    const vicreg_result ref = vicreg()(x, y);
    const ops::vicreg_device_result got = ops::vicreg_loss(to_device(x), to_device(y));
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_x, ref.grad_x) < 1e-4);
    CHECK(rel_diff(got.grad_y, ref.grad_y) < 1e-4);
  }
  {  // other coefficients
    const tensor<cpu> x = random(shape{24, 12}, 82), y = random(shape{24, 12}, 83);
    const vicreg_result ref = vicreg(10.0f, 5.0f, 2.0f, 1e-3f)(x, y);
    const ops::vicreg_device_result got = ops::vicreg_loss(to_device(x), to_device(y), 10.0f, 5.0f, 2.0f, 1e-3f);
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_x, ref.grad_x) < 1e-4);
    CHECK(rel_diff(got.grad_y, ref.grad_y) < 1e-4);
  }
  CHECK_THROWS_AS(ops::vicreg_loss(ops::full(shape{1, 4}, 1.0f), ops::full(shape{1, 4}, 1.0f)), shape_error);
  CHECK_THROWS_AS(ops::vicreg_loss(ops::full(shape{4, 4}, 1.0f), ops::full(shape{4, 5}, 1.0f)), shape_error);
}

TEST_CASE("cuda: Barlow Twins loss and gradients match ssl::barlow_twins") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [N, D, lambda] :
       {std::tuple{32, 16, 0.0051f}, std::tuple{128, 256, 0.0051f}, std::tuple{16, 8, 0.5f}, std::tuple{3, 3, 0.0051f}}) {
    INFO("N " << N << " D " << D << " lambda " << lambda);
    const tensor<cpu> z1 = random(shape{N, D}, 90, -2.0f, 1.0f), z2 = random(shape{N, D}, 91);
    const barlow_twins_result ref = barlow_twins(lambda)(z1, z2);
    const ops::barlow_twins_device_result got = ops::barlow_twins_loss(to_device(z1), to_device(z2), lambda);
    CHECK(value_rel_diff(got.value, ref.value) < 1e-4);
    CHECK(rel_diff(got.grad_z1, ref.grad_z1) < 1e-4);
    CHECK(rel_diff(got.grad_z2, ref.grad_z2) < 1e-4);
  }
  CHECK_THROWS_AS(ops::barlow_twins_loss(ops::full(shape{1, 4}, 1.0f), ops::full(shape{1, 4}, 1.0f)), shape_error);
  CHECK_THROWS_AS(ops::barlow_twins_loss(ops::full(shape{4, 4}, 1.0f), ops::full(shape{3, 4}, 1.0f)), shape_error);
}

TEST_CASE("cuda: VICReg / Barlow Twins reject bad hyper-parameters and empty inputs before any device work") {
  // Runs without a GPU: zero-element device tensors allocate nothing.
  const tensor<cuda> none = empty_device(shape{0, 8});
  CHECK_THROWS_AS(ops::vicreg_loss(none, none, -1.0f), value_error);
  CHECK_THROWS_AS(ops::vicreg_loss(none, none, 25.0f, 25.0f, 1.0f, 0.0f), value_error);
  CHECK_THROWS_AS(ops::vicreg_loss(none, none), shape_error);
  CHECK_THROWS_AS(ops::barlow_twins_loss(none, none, -0.1f), value_error);
  CHECK_THROWS_AS(ops::barlow_twins_loss(none, none, 0.0051f, 0.0f), value_error);
  CHECK_THROWS_AS(ops::barlow_twins_loss(none, none), shape_error);
}
