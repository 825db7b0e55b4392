// Linear, layer norm and batch norm against their CPU references.
#include <ssl/backend/cpu/layer_norm.hpp>
#include <ssl/backend/cpu/linear.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: linear forward and backward (with and without bias, token input, several row chunks)") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (bool with_bias : {true, false}) {
    INFO("bias " << with_bias);
    const tensor<cpu> x = random(shape{4, 90, 48}, 1), w = random(shape{40, 48}, 2), b = random(shape{40}, 3);
    const tensor<cpu> dy = random(shape{4, 90, 40}, 4);
    tensor<cpu> dw = random(shape{40, 48}, 5), db = random(shape{40}, 6);  // backward accumulates
    const tensor<cuda> gx = to_device(x), gw = to_device(w), gb = to_device(b);
    tensor<cuda> gdw = to_device(dw), gdb = to_device(db);
    const tensor<cpu> y = ops::linear_forward(x, w, with_bias ? &b : nullptr);
    CHECK(rel_diff(ops::linear_forward(gx, gw, with_bias ? &gb : nullptr), y) < 1e-5);
    const tensor<cpu> dx = ops::linear_backward(x, w, dy, dw, with_bias ? &db : nullptr);
    const tensor<cuda> gdx = ops::linear_backward(gx, gw, to_device(dy), gdw, with_bias ? &gdb : nullptr);
    CHECK(rel_diff(gdx, dx) < 1e-5);
    CHECK(rel_diff(gdw, dw) < 1e-5);
    CHECK(rel_diff(gdb, db) < 1e-5);
  }
  const tensor<cuda> w = ops::full(shape{4, 8}, 1.0f);
  CHECK_THROWS_AS(ops::linear_forward(ops::full(shape{3, 7}, 1.0f), w, nullptr), shape_error);
}

TEST_CASE("cuda: layer norm forward and backward") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (int64_t D : {16, 192, 1000}) {
    INFO("D = " << D);
    const tensor<cpu> x = random(shape{3, 47, D}, 7, -3.0f, 5.0f), w = random(shape{D}, 8), b = random(shape{D}, 9);
    const tensor<cpu> dy = random(shape{3, 47, D}, 10);
    tensor<cpu> xhat, rstd, dw = random(shape{D}, 11), db = random(shape{D}, 12);
    const tensor<cpu> y = ops::layer_norm_forward(x, w, b, 1e-6f, &xhat, &rstd);
    const tensor<cpu> dx = ops::layer_norm_backward(xhat, rstd, w, dy, dw, db);
    const tensor<cuda> gw = to_device(w);
    tensor<cuda> gxhat, grstd, gdw = to_device(random(shape{D}, 11)), gdb = to_device(random(shape{D}, 12));
    CHECK(rel_diff(ops::layer_norm_forward(to_device(x), gw, to_device(b), 1e-6f, &gxhat, &grstd), y) < 1e-5);
    CHECK(rel_diff(gxhat, xhat) < 1e-5);
    CHECK(rel_diff(grstd, rstd) < 1e-5);
    CHECK(rel_diff(ops::layer_norm_backward(gxhat, grstd, gw, to_device(dy), gdw, gdb), dx) < 1e-4);
    CHECK(rel_diff(gdw, dw) < 1e-4);
    CHECK(rel_diff(gdb, db) < 1e-4);
  }
  CHECK_THROWS_AS(ops::layer_norm_forward(ops::full(shape{2, 5}, 1.0f), ops::full(shape{4}, 1.0f),
                                          ops::full(shape{4}, 0.0f), 1e-5f),
                  shape_error);
}

namespace {
tensor<cpu> host_of(const std::vector<float>& v) {
  return tensor<cpu>::from(shape{int64_t(v.size())}, v);
}
}  // namespace

TEST_CASE("cuda: batch norm train / eval forward, backward and running statistics") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (bool relu : {false, true})
    for (const shape& s : {shape{64, 24}, shape{8, 12, 9, 9}}) {
      INFO("relu " << relu << " shape " << s);
      const int64_t C = s[1];
      const tensor<cpu> x = random(s, 13, 1.0f, 4.0f), dy = random(s, 14);
      const tensor<cpu> gamma = random(shape{C}, 15, 0.5f, 1.5f), beta = random(shape{C}, 16);
      tensor<cpu> y, dx, dgamma = random(shape{C}, 17), dbeta = random(shape{C}, 18);
      std::vector<float> mean, var, invstd;
      ops::batch_norm_forward_train(x, gamma, beta, 1e-5f, relu, y, mean, var, invstd);
      ops::batch_norm_backward_train(dy, x, mean, invstd, gamma, beta, relu, dx, dgamma, dbeta);

      const tensor<cuda> gx = to_device(x), ggamma = to_device(gamma), gbeta = to_device(beta);
      tensor<cuda> gy, gdx, gmean, gvar, ginvstd;
      tensor<cuda> gdgamma = to_device(random(shape{C}, 17)), gdbeta = to_device(random(shape{C}, 18));
      ops::batch_norm_forward_train(gx, ggamma, gbeta, 1e-5f, relu, gy, gmean, gvar, ginvstd);
      CHECK(rel_diff(gy, y) < 1e-5);
      CHECK(rel_diff(gmean, host_of(mean)) < 1e-5);
      CHECK(rel_diff(gvar, host_of(var)) < 1e-4);
      CHECK(rel_diff(ginvstd, host_of(invstd)) < 1e-4);
      ops::batch_norm_backward_train(to_device(dy), gx, gmean, ginvstd, ggamma, gbeta, relu, gdx, gdgamma, gdbeta);
      CHECK(rel_diff(gdx, dx) < 1e-4);
      CHECK(rel_diff(gdgamma, dgamma) < 1e-4);
      CHECK(rel_diff(gdbeta, dbeta) < 1e-4);

      tensor<cpu> rm = random(shape{C}, 19), rv = random(shape{C}, 20, 0.5f, 2.0f);
      tensor<cuda> grm = to_device(rm), grv = to_device(rv);
      const int64_t count = x.numel() / C;
      ops::batch_norm_update_running(rm, rv, mean, var, count, 0.1f);
      ops::batch_norm_update_running(grm, grv, gmean, gvar, count, 0.1f);
      CHECK(rel_diff(grm, rm) < 1e-5);
      CHECK(rel_diff(grv, rv) < 1e-5);
      tensor<cpu> ye;
      tensor<cuda> gye;
      ops::batch_norm_forward_eval(x, gamma, beta, rm, rv, 1e-5f, relu, ye);
      ops::batch_norm_forward_eval(gx, ggamma, gbeta, grm, grv, 1e-5f, relu, gye);
      CHECK(rel_diff(gye, ye) < 1e-5);
    }
  tensor<cuda> y, m, v, is;
  const tensor<cuda> g = ops::full(shape{3}, 1.0f);
  CHECK_THROWS_AS(ops::batch_norm_forward_train(ops::full(shape{4, 5}, 1.0f), g, g, 1e-5f, false, y, m, v, is),
                  shape_error);
}
