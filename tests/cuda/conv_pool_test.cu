// Convolution and pooling against their CPU references.
#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: conv2d forward and backward over several geometries") {
  SSL_REQUIRE_CUDA_DEVICE();
  struct geo {
    int64_t N, C, H, W, O, K, stride, pad;
    bool bias;
  };
  for (const geo& g : {geo{2, 1, 28, 28, 8, 3, 1, 1, false}, geo{3, 6, 14, 14, 5, 3, 2, 1, true},
                       geo{2, 4, 7, 9, 6, 1, 1, 0, true}, geo{2, 3, 12, 12, 7, 4, 4, 0, true},
                       geo{1, 5, 8, 8, 3, 5, 2, 2, false}}) {
    INFO("N " << g.N << " C " << g.C << " H " << g.H << " W " << g.W << " O " << g.O << " K " << g.K << " stride "
              << g.stride << " pad " << g.pad);
    const tensor<cpu> x = random(shape{g.N, g.C, g.H, g.W}, 1), w = random(shape{g.O, g.C, g.K, g.K}, 2);
    const tensor<cpu> b = random(shape{g.O}, 3);
    tensor<cpu> y;
    ops::conv2d_forward(x, w, g.bias ? &b : nullptr, g.stride, g.pad, y);
    const tensor<cuda> gx = to_device(x), gw = to_device(w), gb = to_device(b);
    tensor<cuda> gy;
    ops::conv2d_forward(gx, gw, g.bias ? &gb : nullptr, g.stride, g.pad, gy);
    CHECK(rel_diff(gy, y) < 1e-5);

    const tensor<cpu> dy = random(y.shape(), 4);
    tensor<cpu> dx, dw = random(w.shape(), 5), db = random(shape{g.O}, 6);
    ops::conv2d_backward(x, w, dy, g.stride, g.pad, &dx, dw, g.bias ? &db : nullptr);
    tensor<cuda> gdx, gdw = to_device(random(w.shape(), 5)), gdb = to_device(random(shape{g.O}, 6));
    ops::conv2d_backward(gx, gw, to_device(dy), g.stride, g.pad, &gdx, gdw, g.bias ? &gdb : nullptr);
    CHECK(rel_diff(gdx, dx) < 1e-5);
    CHECK(rel_diff(gdw, dw) < 1e-5);
    CHECK(rel_diff(gdb, db) < 1e-5);
  }
  tensor<cuda> y;
  CHECK_THROWS_AS(ops::conv2d_forward(ops::full(shape{1, 2, 5, 5}, 1.0f), ops::full(shape{3, 4, 3, 3}, 1.0f), nullptr,
                                      1, 1, y),
                  shape_error);
}

TEST_CASE("cuda: max / avg / global average pooling forward and backward") {
  SSL_REQUIRE_CUDA_DEVICE();
  struct geo {
    int64_t k, stride, pad;
  };
  const tensor<cpu> x = random(shape{2, 3, 11, 10}, 7);
  const tensor<cuda> gx = to_device(x);
  for (const geo& g : {geo{2, 2, 0}, geo{3, 2, 1}, geo{3, 1, 1}}) {
    INFO("k " << g.k << " stride " << g.stride << " pad " << g.pad);
    tensor<cpu> y, dx;
    tensor<cuda> gy, gdx;
    std::vector<int32_t> argmax;
    gpu::array<int32_t> gargmax;
    ops::max_pool2d_forward(x, g.k, g.stride, g.pad, y, &argmax);
    ops::max_pool2d_forward(gx, g.k, g.stride, g.pad, gy, &gargmax);
    CHECK(rel_diff(gy, y) == 0.0);
    const tensor<cpu> dy = random(y.shape(), 8);
    ops::max_pool2d_backward(x.shape(), argmax, dy, dx);
    ops::max_pool2d_backward(x.shape(), g.k, g.stride, g.pad, gargmax, to_device(dy), gdx);
    CHECK(rel_diff(gdx, dx) < 1e-6);

    ops::avg_pool2d_forward(x, g.k, g.stride, g.pad, y);
    ops::avg_pool2d_forward(gx, g.k, g.stride, g.pad, gy);
    CHECK(rel_diff(gy, y) < 1e-6);
    ops::avg_pool2d_backward(x.shape(), g.k, g.stride, g.pad, dy, dx);
    ops::avg_pool2d_backward(x.shape(), g.k, g.stride, g.pad, to_device(dy), gdx);
    CHECK(rel_diff(gdx, dx) < 1e-6);
  }
  tensor<cpu> y, dx;
  tensor<cuda> gy, gdx;
  ops::global_avg_pool_forward(x, y);
  ops::global_avg_pool_forward(gx, gy);
  CHECK(rel_diff(gy, y) < 1e-6);
  const tensor<cpu> dy = random(y.shape(), 9);
  ops::global_avg_pool_backward(x.shape(), dy, dx);
  ops::global_avg_pool_backward(x.shape(), to_device(dy), gdx);
  CHECK(rel_diff(gdx, dx) < 1e-6);
  CHECK_THROWS_AS(ops::avg_pool2d_forward(ops::full(shape{2, 3}, 1.0f), 2, 2, 0, gy), shape_error);
}
