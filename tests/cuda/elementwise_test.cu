// Elementwise ops, activations and row softmax against their CPU references.
#include <ssl/backend/cpu/activation.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: fill, axpby and add") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{1000, 3}, 1), y = random(shape{1000, 3}, 2);
  tensor<cuda> dy = to_device(y);
  ops::axpby(2.0f, to_device(x), -0.5f, dy);
  tensor<cpu> ref(y.shape());
  for (int64_t i = 0; i < y.numel(); ++i) ref[i] = 2.0f * x[i] - 0.5f * y[i];
  CHECK(rel_diff(dy, ref) < 1e-6);
  tensor<cpu> sum(y.shape());
  for (int64_t i = 0; i < y.numel(); ++i) sum[i] = x[i] + y[i];
  CHECK(rel_diff(ops::add(to_device(x), to_device(y)), sum) < 1e-6);
  tensor<cuda> f = ops::full(shape{5, 5}, 3.0f);
  CHECK(rel_diff(f, tensor<cpu>(shape{5, 5}, 3.0f)) == 0.0);
  ops::zero(f);
  CHECK(rel_diff(f, tensor<cpu>(shape{5, 5}, 0.0f)) == 0.0);
  CHECK_THROWS_AS(ops::add(to_device(x), ops::full(shape{3, 1000}, 1.0f)), shape_error);
}

TEST_CASE("cuda: relu and gelu forward and backward match the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{7, 333}, 3, -4.0f, 4.0f), g = random(shape{7, 333}, 4);
  const tensor<cuda> dx = to_device(x), dg = to_device(g);
  const tensor<cpu> r = ops::relu_forward(x);
  CHECK(rel_diff(ops::relu_forward(dx), r) == 0.0);
  CHECK(rel_diff(ops::relu_backward(to_device(r), dg), ops::relu_backward(r, g)) == 0.0);
  CHECK(rel_diff(ops::gelu_forward(dx), ops::gelu_forward(x)) < 1e-5);
  CHECK(rel_diff(ops::gelu_backward(dx, dg), ops::gelu_backward(x, g)) < 1e-5);
  CHECK_THROWS_AS(ops::gelu_backward(dx, ops::full(shape{7, 332}, 1.0f)), shape_error);
}

TEST_CASE("cuda: swiglu forward and backward match the CPU (rows of [a | b], odd H)") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{5, 9, 2 * 77}, 5, -6.0f, 6.0f), g = random(shape{5, 9, 77}, 6);
  const tensor<cuda> dx = to_device(x), dg = to_device(g);
  CHECK(rel_diff(ops::swiglu_forward(dx), ops::swiglu_forward(x)) < 1e-5);
  CHECK(rel_diff(ops::swiglu_backward(dx, dg), ops::swiglu_backward(x, g)) < 1e-5);
  CHECK_THROWS_AS(ops::swiglu_forward(ops::full(shape{4, 3}, 1.0f)), shape_error);
  CHECK_THROWS_AS(ops::swiglu_backward(dx, ops::full(shape{5, 9, 78}, 1.0f)), shape_error);
}

namespace {
// Double-precision reference softmax over rows.
tensor<cpu> softmax_ref(const tensor<cpu>& x, bool log_output) {
  const int64_t C = x.dim(-1), R = x.numel() / C;
  tensor<cpu> y(x.shape());
  for (int64_t r = 0; r < R; ++r) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < C; ++j) m = std::max(m, double(x[r * C + j]));
    for (int64_t j = 0; j < C; ++j) s += std::exp(double(x[r * C + j]) - m);
    for (int64_t j = 0; j < C; ++j) {
      const double l = double(x[r * C + j]) - m - std::log(s);
      y[r * C + j] = float(log_output ? l : std::exp(l));
    }
  }
  return y;
}
}  // namespace

TEST_CASE("cuda: row softmax / log-softmax and their backward") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (int64_t C : {5, 128, 4096}) {
    INFO("C = " << C);
    const tensor<cpu> x = random(shape{2, 3, C}, 5, -20.0f, 20.0f), g = random(shape{2, 3, C}, 6);
    const tensor<cuda> dx = to_device(x);
    const tensor<cpu> p = softmax_ref(x, false), l = softmax_ref(x, true);
    CHECK(rel_diff(ops::softmax_rows(dx), p) < 1e-5);
    CHECK(rel_diff(ops::log_softmax_rows(dx), l) < 1e-5);
    // backward references: dx = p (g - <g, p>), dx = g - p sum(g)
    tensor<cpu> ds(x.shape()), dl(x.shape());
    for (int64_t r = 0; r < 6; ++r) {
      double gp = 0, gs = 0;
      for (int64_t j = 0; j < C; ++j) {
        gp += double(g[r * C + j]) * p[r * C + j];
        gs += g[r * C + j];
      }
      for (int64_t j = 0; j < C; ++j) {
        ds[r * C + j] = float(p[r * C + j] * (g[r * C + j] - gp));
        dl[r * C + j] = float(g[r * C + j] - p[r * C + j] * gs);
      }
    }
    CHECK(rel_diff(ops::softmax_rows_backward(to_device(p), to_device(g)), ds) < 1e-4);
    CHECK(rel_diff(ops::log_softmax_rows_backward(to_device(l), to_device(g)), dl) < 1e-4);
  }
}
