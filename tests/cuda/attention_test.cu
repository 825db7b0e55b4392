// Multi-head self-attention against the CPU reference (ViT-T/4 shapes and a small odd one).
#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: attention forward (with probs) and backward match the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  struct geo {
    int64_t N, T, D, H;
  };
  for (const geo& g : {geo{3, 7, 12, 2}, geo{4, 50, 192, 3}, geo{2, 13, 128, 4}}) {
    INFO("N " << g.N << " T " << g.T << " D " << g.D << " H " << g.H);
    const float scale = 1.0f / std::sqrt(float(g.D / g.H));
    const tensor<cpu> qkv = random(shape{g.N, g.T, 3 * g.D}, 1, -2.0f, 2.0f), dout = random(shape{g.N, g.T, g.D}, 2);
    tensor<cpu> probs;
    const tensor<cpu> out = ops::attention_forward(qkv, g.H, scale, &probs);
    const tensor<cpu> dqkv = ops::attention_backward(qkv, probs, g.H, scale, dout);
    const tensor<cuda> gqkv = to_device(qkv);
    tensor<cuda> gprobs;
    CHECK(rel_diff(ops::attention_forward(gqkv, g.H, scale, &gprobs), out) < 1e-5);
    CHECK(rel_diff(gprobs, probs) < 1e-5);
    CHECK(rel_diff(ops::attention_forward(gqkv, g.H, scale), out) < 1e-5);  // without saving P
    CHECK(rel_diff(ops::attention_backward(gqkv, gprobs, g.H, scale, to_device(dout)), dqkv) < 1e-4);
  }
  CHECK_THROWS_AS(ops::attention_forward(ops::full(shape{2, 5, 30}, 1.0f), 4, 1.0f), shape_error);
}

TEST_CASE("cuda: patchify / unpatchify, prepend_token, gather / scatter tokens, residual, multiply") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{3, 2, 12, 8}, 3);
  const tensor<cuda> gx = to_device(x);
  const tensor<cpu> patches = ops::patchify(x, 4);
  const tensor<cuda> gpatches = ops::patchify(gx, 4);
  CHECK(rel_diff(gpatches, patches) == 0.0);
  CHECK(rel_diff(ops::unpatchify(gpatches, 2, 4, 3, 2), x) == 0.0);
  const tensor<cpu> token = random(shape{32}, 4);
  CHECK(rel_diff(ops::prepend_token(gpatches, to_device(token)), ops::prepend_token(patches, token)) == 0.0);
  const std::vector<int32_t> idx = {5, 0, 2, 1, 3, 4, 4, 1, 0};  // 3 samples x 3 kept tokens of 6
  const tensor<cpu> kept = ops::gather_tokens(patches, idx, 3);
  CHECK(rel_diff(ops::gather_tokens(gpatches, idx, 3), kept) == 0.0);
  CHECK(rel_diff(ops::scatter_tokens(to_device(kept), idx, 6), ops::scatter_tokens(kept, idx, 6)) == 0.0);
  CHECK_THROWS_AS(ops::gather_tokens(gpatches, std::vector<int32_t>{0, 1, 6, 0, 0, 0, 0, 0, 0}, 3), value_error);
  CHECK_THROWS_AS(ops::patchify(gx, 5), shape_error);

  tensor<cpu> y = random(shape{4, 50}, 5);
  const tensor<cpu> s = random(shape{4, 50}, 6), g = random(shape{4, 50}, 7);
  tensor<cuda> gy = to_device(y), gg = to_device(g);
  tensor<cpu> gcpu = g;
  ops::add_relu_inplace(y, s);
  ops::add_relu_inplace(gy, to_device(s));
  CHECK(rel_diff(gy, y) == 0.0);
  ops::add_relu_backward_inplace(y, gcpu);
  ops::add_relu_backward_inplace(gy, gg);
  CHECK(rel_diff(gg, gcpu) == 0.0);
  CHECK(rel_diff(ops::multiply(to_device(s), to_device(g)), ops::multiply(s, g)) == 0.0);
}
