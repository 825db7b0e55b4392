#include <catch2/catch.hpp>
#include <ssl/nn/transformer_block.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
/// Loads the fixture's weights (by name) into blk, then compares output, dx and every gradient.
void check_block_against_fixture(const char* file, ssl::transformer_block<>& blk) {
  ssl_test::fixture fx(file);
  auto params = ssl::parameters(blk);
  for (auto& p : params) {
    INFO(p.name);
    REQUIRE(fx.has(p.name));  // norm1.weight, attn.qkv.weight, ..., mlp.fc2.bias (ls1.gamma, ls2.gamma)
    p.p->value = fx.tensor(p.name);
  }
  const T x = fx.tensor("x");
  auto [y, saved] = blk.forward(x);
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(blk.infer(x), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(blk.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
  for (auto& p : params) {
    INFO(p.name);
    CHECK(ssl_test::rel_error(p.p->grad, fx.tensor("d_" + p.name)) <= 1e-4);
  }
}
}  // namespace

TEST_CASE("transformer_block matches PyTorch (timm pre-norm block): output and all gradients") {
  ssl::transformer_block<> blk({.dim = 16, .heads = 2, .mlp_ratio = 4.0f});
  REQUIRE(ssl::parameters(blk).size() == 12);
  check_block_against_fixture("vit/transformer_block.json", blk);
}

TEST_CASE("transformer_block with LayerScale matches PyTorch (DINOv2's Block: ls1 / ls2): output and all gradients") {
  ssl::transformer_block<> blk({.dim = 16, .heads = 2, .mlp_ratio = 4.0f, .layer_scale = 1e-5f});
  const auto params = ssl::parameters(blk);
  REQUIRE(params.size() == 14);
  CHECK(params[6].name == "ls1.gamma");  // DINOv2's order: norm1, attn, ls1, norm2, mlp, ls2
  CHECK(params[13].name == "ls2.gamma");
  check_block_against_fixture("vit/transformer_block_ls.json", blk);
}

TEST_CASE("transformer_block with DINOv2's SwiGLU feed-forward matches PyTorch: output and all gradients") {
  ssl::transformer_block<> blk({.dim = 16, .heads = 2, .mlp_ratio = 4.0f, .layer_scale = 1e-5f,
                                .ffn = ssl::ffn_kind::swiglu});
  CHECK(blk.hidden_features() == 48);  // (int(64 * 2 / 3) + 7) / 8 * 8: 42 rounded up to 48
  const auto params = ssl::parameters(blk);
  REQUIRE(params.size() == 14);
  CHECK(params[9].name == "mlp.w12.weight");
  CHECK(params[9].p->value.shape() == shape{96, 16});  // both halves [a | b] from one linear
  CHECK(params[11].name == "mlp.w3.weight");
  CHECK(params[11].p->value.shape() == shape{16, 48});
  check_block_against_fixture("vit/transformer_block_swiglu.json", blk);
}

TEST_CASE("transformer_block's SwiGLU width follows DINOv2 and keeps the MLP's parameter count at ViT-T") {
  ssl::transformer_block<> mlp({.dim = 192, .heads = 3});
  ssl::transformer_block<> glu({.dim = 192, .heads = 3, .ffn = ssl::ffn_kind::swiglu});
  CHECK(mlp.hidden_features() == 768);
  CHECK(glu.hidden_features() == 512);
  // Weights 2 x 192 x 768 = 3 x 192 x 512; biases 768 + 192 against 1024 + 192.
  CHECK(ssl::parameter_count(glu) == ssl::parameter_count(mlp) + 256);
  // ViT-g's D 1536 with mlp_ratio 4: int(6144 * 2 / 3) = 4096, already a multiple of 8.
  CHECK(ssl::transformer_block<>({.dim = 1536, .heads = 24, .ffn = ssl::ffn_kind::swiglu}).hidden_features() == 4096);
}

TEST_CASE("transformer_block passes the gradient check (GELU MLP and SwiGLU feed-forward)") {
  for (const auto ffn : {ssl::ffn_kind::mlp, ssl::ffn_kind::swiglu}) {
    ssl::transformer_block<> blk({.dim = 8, .heads = 2, .mlp_ratio = 2.0f, .init_std = 0.3f, .ffn = ffn}, ssl::rng(5));
    ssl::rng g(6);
    T x(shape{2, 4, 8});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
    ssl::testing::gradient_check_options o;
    o.eps = 5e-3;
    o.max_checks = 16;
    auto r = ssl::testing::check_module_gradients(blk, x, o);
    INFO((ffn == ssl::ffn_kind::swiglu ? "swiglu: " : "mlp: ") << r.report());
    CHECK(r.ok());
  }
}

TEST_CASE("drop_path: per-sample mask, scaled 1/(1-p), reproducible, identity in inference") {
  ssl::drop_path<> dp(0.5f, 7);
  T x(shape{64, 3}, 1.0f);
  auto a = dp.forward(x);
  int dropped = 0;
  for (int64_t n = 0; n < 64; ++n) {
    const float v = a.y[n * 3];
    CHECK((v == 0.0f || v == 2.0f));
    CHECK(a.y[n * 3 + 1] == v);  // the whole sample shares one decision
    dropped += v == 0.0f;
  }
  CHECK(dropped > 10);
  CHECK(dropped < 54);
  const T dx = dp.backward(a.saved, x);
  CHECK(ssl_test::rel_error(dx, a.y) == 0.0);
  ssl::drop_path<> again(0.5f, 7);
  CHECK(ssl_test::rel_error(again.forward(x).y, a.y) == 0.0);
  CHECK(ssl_test::rel_error(dp.infer(x), x) == 0.0);
  CHECK_THROWS_AS(ssl::drop_path<>(1.0f), ssl::value_error);
}

TEST_CASE("transformer_block with drop-path: a sample with both branches dropped passes through unchanged") {
  ssl::transformer_block<> blk({.dim = 8, .heads = 2, .drop_path = 0.5f}, ssl::rng(5));
  ssl::rng g(6);
  T x(shape{8, 3, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  auto o = blk.forward(x);
  int identity_rows = 0, both_dropped = 0;
  for (int64_t n = 0; n < 8; ++n) {
    bool same = true;
    for (int64_t i = 0; i < 24; ++i) same &= o.y[n * 24 + i] == x[n * 24 + i];
    identity_rows += same;
    if (o.saved.drop1.scale[size_t(n)] == 0.0f && o.saved.drop2.scale[size_t(n)] == 0.0f) {
      ++both_dropped;
      CHECK(same);
    }
  }
  CHECK(identity_rows == both_dropped);
  CHECK(identity_rows < 8);
  // Backward routes no gradient through a dropped branch: dx of such a sample is dy.
  T dy(x.shape());
  for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = g.normal();
  const T dx = blk.backward(o.saved, dy);
  for (int64_t n = 0; n < 8; ++n)
    if (o.saved.drop1.scale[size_t(n)] == 0.0f && o.saved.drop2.scale[size_t(n)] == 0.0f)
      for (int64_t i = 0; i < 24; ++i) CHECK(dx[n * 24 + i] == dy[n * 24 + i]);
}
