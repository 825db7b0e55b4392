// DINO head / loss ops on the device (backend/cuda/weight_norm.cuh, dino_loss.cuh) against their CPU
// references (backend/cpu/weight_norm.hpp, ssl::dino).
#include <ssl/backend/cuda/dino_loss.cuh>
#include <ssl/backend/cuda/weight_norm.cuh>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: l2_normalize_rows and weight_norm (forward and backward) match the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{37, 128}, 1), dy = random(shape{37, 128}, 2);
  tensor<cpu> norms;
  tensor<cuda> dnorms;
  const tensor<cpu> y = ops::l2_normalize_rows(x, norms);
  const tensor<cuda> dev_y = ops::l2_normalize_rows(to_device(x), dnorms);
  CHECK(rel_diff(dev_y, y) < 1e-5);
  CHECK(rel_diff(dnorms, norms) < 1e-5);
  CHECK(rel_diff(ops::l2_normalize_rows_backward(dev_y, dnorms, to_device(dy)), ops::l2_normalize_rows_backward(y, norms, dy)) <
        1e-4);
  const tensor<cpu> v = random(shape{300, 128}, 3), g = random(shape{300, 1}, 4, 0.5f, 1.5f), dw = random(shape{300, 128}, 5);
  CHECK(rel_diff(ops::weight_norm(to_device(v), to_device(g)), ops::weight_norm(v, g)) < 1e-5);
  tensor<cpu> dv = random(shape{300, 128}, 6), dg = random(shape{300, 1}, 7);
  tensor<cuda> ddv = to_device(dv), ddg = to_device(dg);
  ops::weight_norm_backward(v, g, dw, dv, dg);
  ops::weight_norm_backward(to_device(v), to_device(g), to_device(dw), ddv, ddg);
  CHECK(rel_diff(ddv, dv) < 1e-4);
  CHECK(rel_diff(ddg, dg) < 1e-4);
}

TEST_CASE("cuda: DINO loss and center update match ssl::dino") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t V = 6, G = 2, B = 3, K = 4096;
  const tensor<cpu> s = random(shape{V, B, K}, 11, -3.0f, 3.0f), t = random(shape{G, B, K}, 12, -3.0f, 3.0f);
  dino loss(K, 0.1f, 0.04f, 0.9f);
  loss.load_center(random(shape{K}, 13, -0.5f, 0.5f));
  tensor<cuda> center = to_device(loss.center());
  const dino_result ref = loss(s, t);
  const auto r = ops::dino_loss(to_device(s), to_device(t), center, 0.1f, 0.04f);
  CHECK(std::abs(to_host_scalar(r.value) - ref.value) <= 1e-4f * std::abs(ref.value));
  CHECK(rel_diff(r.grad_student, ref.grad_student) < 1e-4);
  loss.update_center(t);
  ops::dino_update_center(center, to_device(t), 0.9f);
  CHECK(rel_diff(center, loss.center()) < 1e-5);
  CHECK_THROWS_AS(ops::dino_loss(to_device(s), to_device(s), to_device(tensor<cpu>(shape{K - 1}, 0.0f)), 0.1f, 0.04f),
                  shape_error);
}
