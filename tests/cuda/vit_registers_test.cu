// DINOv2's ViT additions on the device against the CPU: the token ops of register tokens
// (ops::insert_tokens / remove_tokens), LayerScale (ops::scale_channels and its backward, dgamma
// through the deterministic column sums), and vit<cuda> with registers + LayerScale on the three
// token paths (all tokens, MAE's token mask, iBOT's patch mask), its inference and [CLS] attention.
#include <ssl/backend/cuda/vit_ops.cuh>
#include <ssl/encoders/vit.hpp>
#include <ssl/nn/layer_scale.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
/// One token path of vit<cpu> and vit<cuda> with the same weights, forward and backward of the
/// cotangent dy: outputs, input gradients and every parameter gradient compared. path(encoder, x)
/// runs the path's forward_tokens; returns the host output.
template <class Path>
tensor<cpu> expect_token_path_parity(vit<cpu>& host, vit<cuda>& dev, const param_pair& ps, const tensor<cpu>& x,
                                     const tensor<cpu>& dy, Path&& path) {
  zero_gradients(ps);
  auto h = path(host, x);
  auto d = path(dev, to_device(x));
  CHECK(rel_diff(d.y, h.y) < 1e-4);
  CHECK(rel_diff(dev.backward_tokens(d.saved, to_device(dy)), host.backward_tokens(h.saved, dy)) < 2e-3);
  expect_close_gradients(ps);
  return h.y;
}
}  // namespace

TEST_CASE("cuda: insert_tokens / remove_tokens / scale_channels (+ backward) match the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 5, T = 17, D = 40, R = 4;
  const tensor<cpu> x = random(shape{N, T, D}, 1), regs = random(shape{1, R, D}, 2);
  for (const int64_t at : {int64_t(0), int64_t(1), T}) {
    INFO("at " << at);
    const tensor<cpu> h = ops::insert_tokens(x, regs, at);
    CHECK(h.shape() == shape{N, T + R, D});
    CHECK(rel_diff(ops::insert_tokens(to_device(x), to_device(regs), at), h) == 0.0);
    CHECK(rel_diff(ops::remove_tokens(to_device(h), at, R), ops::remove_tokens(h, at, R)) == 0.0);
    CHECK(rel_diff(ops::remove_tokens(to_device(h), at, R), x) == 0.0);  // remove undoes insert
  }
  CHECK_THROWS_AS(ops::insert_tokens(to_device(x), to_device(random(shape{1, 3}, 3)), 1), shape_error);
  CHECK_THROWS_AS(ops::remove_tokens(to_device(x), 15, 3), shape_error);

  const tensor<cpu> gamma = random(shape{D}, 4), dy = random(shape{N, T, D}, 5);
  CHECK(rel_diff(ops::scale_channels(to_device(x), to_device(gamma)), ops::scale_channels(x, gamma)) < 1e-7);
  tensor<cpu> dgamma = random(shape{D}, 6);
  tensor<cuda> ddgamma = to_device(dgamma);
  const tensor<cpu> dx = ops::scale_channels_backward(x, dy, gamma, dgamma);
  CHECK(rel_diff(ops::scale_channels_backward(to_device(x), to_device(dy), to_device(gamma), ddgamma), dx) < 1e-7);
  CHECK(rel_diff(ddgamma, dgamma) < 1e-5);  // accumulated onto the old values, as on the CPU
  CHECK_THROWS_AS(ops::scale_channels(to_device(x), to_device(random(shape{D + 1}, 7))), shape_error);
}

TEST_CASE("cuda: layer_scale<cuda> forward / backward match layer_scale<cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  layer_scale<cpu> host(24, 1e-5f);
  layer_scale<cuda> dev(24, 1e-5f);
  host.gamma().value = random(shape{24}, 8);
  dev.gamma().value = to_device(host.gamma().value);
  const tensor<cpu> x = random(shape{3, 7, 24}, 9), dy = random(shape{3, 7, 24}, 10);
  auto h = host.forward(x);
  auto d = dev.forward(to_device(x));
  CHECK(rel_diff(d.y, h.y) < 1e-7);
  CHECK(rel_diff(dev.backward(d.saved, to_device(dy)), host.backward(h.saved, dy)) < 1e-7);
  CHECK(rel_diff(dev.gamma().grad, host.gamma().grad) < 1e-5);
}

TEST_CASE("cuda: vit<cuda> with 4 registers and LayerScale matches vit<cpu> (all tokens, MAE mask, iBOT mask)") {
  SSL_REQUIRE_CUDA_DEVICE();
  const vit_options o{.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2,
                      .mask_token = true, .registers = 4, .layer_scale = 0.1f};
  vit<cpu> host(o, rng(3));
  vit<cuda> dev(o, rng(3));
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  const int64_t N = 4, L = 49;
  const tensor<cpu> x = random(shape{N, 1, 28, 28}, 32, 0.0f, 1.0f);

  SECTION("all tokens, inference and the [CLS] attention") {
    CHECK(rel_diff(dev.infer_tokens(to_device(x)), host.infer_tokens(x)) < 1e-4);
    CHECK(rel_diff(dev.attention(to_device(x)), host.attention(x)) < 1e-4);
    const tensor<cpu> a = host.cls_attention(x);
    CHECK(a.shape() == shape{N, 2, 1 + L});
    CHECK(rel_diff(dev.cls_attention(to_device(x)), a) < 1e-4);
    const tensor<cpu> dy = random(shape{N, 1 + L, 32}, 33);
    expect_token_path_parity(host, dev, ps, x, dy, [](auto& enc, const auto& in) { return enc.forward_tokens(in); });
    CHECK(host.register_tokens().grad.vec().squaredNorm() > 0.0f);
  }
  SECTION("MAE: [CLS] + the visible quarter of the patches") {
    const token_mask m = random_token_mask(N, L, 0.75f, rng(9));
    const tensor<cpu> dy = random(shape{N, 1 + m.kept, 32}, 34);
    const tensor<cpu> y = expect_token_path_parity(
        host, dev, ps, x, dy, [&](auto& enc, const auto& in) { return enc.forward_tokens(in, &m); });
    CHECK(rel_diff(dev.infer_tokens(to_device(x), &m), y) < 1e-4);
  }
  SECTION("iBOT: every third patch replaced by the mask token") {
    host.mask_token().value = random(shape{1, 32}, 30, -0.5f, 0.5f);
    dev.mask_token().value = to_device(host.mask_token().value);
    patch_mask pm{.batch = N, .tokens = L, .hidden = std::vector<uint8_t>(size_t(N * L), 0)};
    for (int64_t i = 0; i < N * L; i += 3) pm.hidden[size_t(i)] = 1;
    const tensor<cpu> dy = random(shape{N, 1 + L, 32}, 35);
    expect_token_path_parity(host, dev, ps, x, dy,
                             [&](auto& enc, const auto& in) { return enc.forward_tokens(in, nullptr, &pm); });
  }
}

TEST_CASE("cuda: vit<cuda> with DINOv2's SwiGLU blocks matches vit<cpu> (tokens, gradients of w12 / w3)") {
  SSL_REQUIRE_CUDA_DEVICE();
  const vit_options o{.image_size = 28, .patch = 4, .in_channels = 1, .dim = 32, .depth = 2, .heads = 2,
                      .registers = 2, .layer_scale = 0.1f, .ffn = ffn_kind::swiglu};
  vit<cpu> host(o, rng(4));
  vit<cuda> dev(o, rng(4));
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  const tensor<cpu> x = random(shape{3, 1, 28, 28}, 36, 0.0f, 1.0f);
  CHECK(rel_diff(dev.infer_tokens(to_device(x)), host.infer_tokens(x)) < 1e-4);
  const tensor<cpu> dy = random(shape{3, 50, 32}, 37);
  expect_token_path_parity(host, dev, ps, x, dy, [](auto& enc, const auto& in) { return enc.forward_tokens(in); });
  CHECK(host.block(1).hidden_features() == 88);  // (int(256 / 3) + 7) / 8 * 8
}
