// vit with register tokens (vit_options::registers, Darcet et al. 2024) and LayerScale
// (vit_options::layer_scale, DINOv2): PyTorch golden values of a DINOv2-layout ViT, gradients of every
// parameter (registers and gammas included) on all three token paths, and the contracts that keep
// heads, MAE and iBOT unchanged (the output has no register rows).
#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <ssl/encoders/vit.hpp>
#include <ssl/io/module_weights.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
// scripts/fixtures/vit.py: 8x8x1 images, patch 2, D 8, depth 2, 2 heads, 3 registers, LayerScale.
ssl::vit_options small(int64_t registers, float layer_scale, bool mask_token = false,
                       ssl::ffn_kind ffn = ssl::ffn_kind::mlp) {
  return {.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 2, .heads = 2, .mlp_ratio = 2.0f,
          .mask_token = mask_token, .registers = registers, .layer_scale = layer_scale, .ffn = ffn};
}
T random(const shape& s, uint64_t seed, float scale = 1.0f) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * g.normal();
  return t;
}
double weighted_sum(const T& y, const T& w) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += double(y[i]) * w[i];
  return s;
}
/// Finite differences of sum(w * tokens(x)) for the input and every parameter of v.
template <class Tokens>
ssl::testing::gradient_check_result check_token_gradients(ssl::vit<>& v, const T& x, const T& w, Tokens&& tokens,
                                                          std::vector<T>* grads_out = nullptr) {
  auto params = ssl::parameters(v);
  for (auto& r : params) r.p->grad.zero();
  const auto o = tokens(x, true);
  const T dx = v.backward_tokens(o.saved, w);
  std::vector<T> values{x}, grads{dx};
  for (auto& r : params) values.push_back(r.p->value), grads.push_back(r.p->grad);
  if (grads_out) *grads_out = grads;
  auto loss = [&](std::vector<T>& in) {
    for (size_t k = 1; k < in.size(); ++k) params[k - 1].p->value = in[k];
    return weighted_sum(tokens(in[0], false).y, w);
  };
  return ssl::testing::check_function_gradients(loss, values, grads, {.eps = 2e-3, .max_checks = 6});
}
/// Every parameter moved off the init's zeros, ones and the registers' 1e-6 (deterministic offsets).
void move_off_init(ssl::vit<>& v) {
  for (auto& r : ssl::parameters(v))
    for (int64_t i = 0; i < r.p->value.numel(); ++i) r.p->value[i] += 0.2f * float(std::sin(1.7 * double(i) + 1.0));
}
/// iBOT-style mask with every third patch of the batch hidden.
ssl::patch_mask every_third_hidden(int64_t batch, int64_t tokens) {
  ssl::patch_mask pm{.batch = batch, .tokens = tokens, .hidden = std::vector<uint8_t>(size_t(batch * tokens), 0)};
  for (int64_t i = 0; i < batch * tokens; i += 3) pm.hidden[size_t(i)] = 1;
  return pm;
}
std::string temp_weights_path(const char* tag) {
  return (std::filesystem::temp_directory_path() /
          ("ssl_test_" + std::to_string(::getpid()) + "_" + tag + ".safetensors")).string();
}
}  // namespace

TEST_CASE("vit registers and LayerScale: DINOv2 names, order, init; off by default") {
  ssl::vit<> plain(small(0, 0.0f), ssl::rng(1)), with(small(3, 1e-5f), ssl::rng(1));
  CHECK(ssl::parameter_count(with) == ssl::parameter_count(plain) + 3 * 8 + 2 * 2 * 8);
  auto params = ssl::parameters(with);
  CHECK(params[1].name == "pos_embed");
  CHECK(params[2].name == "register_tokens");
  CHECK(params[2].p->value.shape() == shape{1, 3, 8});
  const float reg_rms = std::sqrt(params[2].p->value.vec().squaredNorm() / 24.0f);
  CHECK(reg_rms > 1e-7f);  // DINOv2: normal(std 1e-6)
  CHECK(reg_rms < 1e-5f);
  CHECK(params[11].name == "blocks.0.ls1.gamma");
  CHECK(params[18].name == "blocks.0.ls2.gamma");
  CHECK(params[18].p->value[0] == 1e-5f);
  CHECK(with.registers() == 3);
  CHECK(plain.registers() == 0);
  CHECK_THROWS_AS(plain.register_tokens(), ssl::value_error);
  CHECK_THROWS_AS(ssl::vit<>(small(-1, 0.0f)), ssl::value_error);
  CHECK_THROWS_AS(ssl::vit<>(small(0, -1e-5f)), ssl::value_error);
  // The output keeps the [CLS; patches] layout: (N, 1 + 16, D), the registers dropped.
  const T x = random({2, 1, 8, 8}, 2);
  CHECK(with.infer_tokens(x).shape() == shape{2, 17, 8});
  CHECK(with.forward_tokens(x).y.shape() == shape{2, 17, 8});
  CHECK(with.infer(x).shape() == shape{2, 8});
  CHECK(with.attention(x).shape() == shape{2, 2, 20, 20});  // [CLS, 3 registers, 16 patches]
  CHECK(with.cls_attention(x).shape() == shape{2, 2, 17});
}

TEST_CASE("vit with registers + LayerScale matches PyTorch (DINOv2 layout): tokens, [CLS] attention, all gradients") {
  ssl_test::fixture fx("vit/vit_registers.json");
  ssl::vit<> v(small(3, 1e-5f), ssl::rng(0));
  auto params = ssl::parameters(v);
  REQUIRE(params.size() == 5 + 2 * 14 + 2);
  for (auto& p : params) {
    INFO(p.name);
    REQUIRE(fx.has(p.name));
    p.p->value = fx.tensor(p.name);
  }
  const T x = fx.tensor("x");
  CHECK(ssl_test::rel_error(v.infer_tokens(x), fx.tensor("tokens")) <= 1e-4);
  CHECK(ssl_test::rel_error(v.cls_attention(x), fx.tensor("cls_attention")) <= 1e-4);
  auto o = v.forward_tokens(x);
  CHECK(ssl_test::rel_error(o.y, fx.tensor("tokens")) <= 1e-4);
  CHECK(ssl_test::rel_error(v.backward_tokens(o.saved, fx.tensor("cot")), fx.tensor("dx")) <= 1e-4);
  for (auto& p : params) {
    INFO(p.name);
    CHECK(ssl_test::rel_error(p.p->grad, fx.tensor("d_" + p.name)) <= 1e-4);
  }
}

TEST_CASE("vit registers: gradients of every parameter pass the checker (plain, MAE token mask, iBOT patch mask)") {
  ssl::vit<> v(small(2, 0.4f, true), ssl::rng(5));
  move_off_init(v);
  const T x = random({3, 1, 8, 8}, 6);
  SECTION("all tokens") {
    std::vector<T> grads;
    auto res = check_token_gradients(v, x, random({3, 17, 8}, 7),
                                     [&](const T& in, bool) { return v.forward_tokens(in); }, &grads);
    INFO(res.report());
    CHECK(res.ok());
    CHECK(grads[4].vec().squaredNorm() > 0.0f);  // register_tokens: grads are (input, cls, mask, pos, registers, ...)
  }
  SECTION("MAE: [CLS] + the visible patches of a token mask") {
    const auto m = ssl::random_token_mask(3, 16, 0.75f, ssl::rng(3));
    auto res = check_token_gradients(v, x, random({3, 5, 8}, 8),
                                     [&](const T& in, bool) { return v.forward_tokens(in, &m); });
    INFO(res.report());
    CHECK(res.ok());
    CHECK(ssl_test::rel_error(v.forward_tokens(x, &m).y, v.infer_tokens(x, &m)) <= 1e-6);
  }
  SECTION("iBOT: hidden patches replaced by the mask token") {
    const ssl::patch_mask pm = every_third_hidden(3, 16);
    auto res = check_token_gradients(v, x, random({3, 17, 8}, 9),
                                     [&](const T& in, bool) { return v.forward_tokens(in, nullptr, &pm); });
    INFO(res.report());
    CHECK(res.ok());
  }
}

TEST_CASE("vit with SwiGLU blocks (DINOv2's ViT-g layout): names, gradients of every parameter, weights files") {
  // registers + LayerScale + mask token + SwiGLU; D 8, mlp_ratio 2: h 16 -> H (int(32 / 3) + 7) / 8 * 8 = 16
  const auto opts = small(2, 0.4f, true, ssl::ffn_kind::swiglu);
  ssl::vit<> v(opts, ssl::rng(5));
  CHECK(v.block(0).hidden_features() == 16);
  auto params = ssl::parameters(v);
  std::vector<std::string> names;
  for (auto& r : params) names.push_back(r.name);
  CHECK(std::count(names.begin(), names.end(), "blocks.1.mlp.w12.weight") == 1);
  CHECK(std::count(names.begin(), names.end(), "blocks.1.mlp.w3.bias") == 1);
  CHECK(std::count(names.begin(), names.end(), "blocks.1.mlp.fc1.weight") == 0);
  move_off_init(v);
  const T x = random({3, 1, 8, 8}, 6);
  const ssl::patch_mask pm = every_third_hidden(3, 16);
  auto res = check_token_gradients(v, x, random({3, 17, 8}, 9),
                                   [&](const T& in, bool) { return v.forward_tokens(in, nullptr, &pm); });
  INFO(res.report());
  CHECK(res.ok());
  CHECK(ssl_test::rel_error(v.forward_tokens(x).y, v.infer_tokens(x)) <= 1e-6);

  const std::string path = temp_weights_path("vit_swiglu");
  ssl::save_module_weights(path, v);
  ssl::vit<> back(opts, ssl::rng(99));
  ssl::load_module_weights(path, back);
  CHECK(ssl_test::rel_error(back.infer_tokens(x), v.infer_tokens(x)) == 0.0);
  ssl::vit<> mlp(small(2, 0.4f, true), ssl::rng(5));
  CHECK_THROWS_AS(ssl::load_module_weights(path, mlp), ssl::value_error);  // mlp.fc1 missing, mlp.w12 unexpected
  std::remove(path.c_str());
}

TEST_CASE("vit registers change what the patches see: the same weights without registers give other tokens") {
  ssl::vit<> with(small(2, 0.0f), ssl::rng(4));
  for (int64_t i = 0; i < with.register_tokens().value.numel(); ++i) with.register_tokens().value[i] = 0.5f;
  ssl::vit<> without(small(0, 0.0f), ssl::rng(4));
  const T x = random({2, 1, 8, 8}, 5);
  CHECK(ssl_test::rel_error(with.infer_tokens(x), without.infer_tokens(x)) > 1e-3);
  // [CLS] attention over [CLS] + patches sums to 1 minus what the registers take
  const T a = with.cls_attention(x), full = with.attention(x);
  for (int64_t nh = 0; nh < 4; ++nh) {
    double row = 0.0, regs = 0.0;
    for (int64_t t = 0; t < 17; ++t) row += a[nh * 17 + t];
    for (int64_t r = 1; r <= 2; ++r) regs += full[nh * 19 * 19 + r];  // T = 1 + 2 registers + 16
    CHECK(row + regs == Approx(1.0).margin(1e-5));
    CHECK(regs > 0.0);
  }
}

TEST_CASE("vit registers + LayerScale: a safetensors round trip restores the tokens; a plain ViT refuses the file") {
  ssl::vit<> v(small(3, 1e-5f), ssl::rng(6));
  for (auto& r : ssl::parameters(v))
    for (int64_t i = 0; i < r.p->value.numel(); ++i) r.p->value[i] += 0.1f * float(std::cos(double(i)));
  const std::string path = temp_weights_path("vit_registers");
  ssl::save_module_weights(path, v);
  ssl::vit<> back(small(3, 1e-5f), ssl::rng(99));
  ssl::load_module_weights(path, back);
  const T x = random({2, 1, 8, 8}, 7);
  CHECK(ssl_test::rel_error(back.infer_tokens(x), v.infer_tokens(x)) == 0.0);
  ssl::vit<> plain(small(0, 0.0f), ssl::rng(6));
  CHECK_THROWS_AS(ssl::load_module_weights(path, plain), ssl::value_error);  // unexpected register_tokens
  ssl::vit<> other(small(2, 1e-5f), ssl::rng(6));
  CHECK_THROWS_AS(ssl::load_module_weights(path, other), ssl::shape_error);  // (1, 3, 8) into (1, 2, 8)
  std::remove(path.c_str());
}

TEST_CASE("register and LayerScale ops (CPU): results and typed errors") {
  const T x = random({2, 3, 4}, 1), regs = random({1, 2, 4}, 2);
  const T y = ssl::ops::insert_tokens(x, regs, 1);
  REQUIRE(y.shape() == shape{2, 5, 4});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 4; ++c) {
      CHECK(y.at(n, 0, c) == x.at(n, 0, c));
      CHECK(y.at(n, 1, c) == regs.at(0, 0, c));
      CHECK(y.at(n, 2, c) == regs.at(0, 1, c));
      CHECK(y.at(n, 4, c) == x.at(n, 2, c));
    }
  CHECK(ssl_test::rel_error(ssl::ops::remove_tokens(y, 1, 2), x) == 0.0);
  CHECK_THROWS_AS(ssl::ops::insert_tokens(x, random({1, 3}, 3), 1), ssl::shape_error);  // not whole tokens
  CHECK_THROWS_AS(ssl::ops::insert_tokens(x, regs, 4), ssl::shape_error);               // past the end
  CHECK_THROWS_AS(ssl::ops::remove_tokens(x, 2, 2), ssl::shape_error);
  CHECK_THROWS_AS(ssl::ops::insert_tokens(T(shape{2, 4}), regs, 0), ssl::shape_error);  // not (N, T, D)
  T dgamma(shape{4}, 0.0f);
  CHECK_THROWS_AS(ssl::ops::scale_channels(x, T(shape{3})), ssl::shape_error);
  CHECK_THROWS_AS(ssl::ops::scale_channels_backward(x, T(shape{2, 3, 3}), T(shape{4}), dgamma), ssl::shape_error);
  T wrong(shape{5}, 0.0f);
  CHECK_THROWS_AS(ssl::ops::scale_channels_backward(x, x, T(shape{4}), wrong), ssl::shape_error);
}
