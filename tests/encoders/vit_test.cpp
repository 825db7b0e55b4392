#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/encoders/vit.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
// w_k[i] = 0.05 sin(0.37 i + 0.91 k + 0.1) (+1 for LayerNorm weights), as scripts/fixtures/vit.py.
void set_formula_weights(ssl::param_list<>& params) {
  for (size_t k = 0; k < params.size(); ++k) {
    const std::string& n = params[k].name;
    const bool norm_weight = n == "norm.weight" || n.ends_with("norm1.weight") || n.ends_with("norm2.weight");
    T& v = params[k].p->value;
    for (int64_t i = 0; i < v.numel(); ++i)
      v[i] = float(0.05 * std::sin(0.37 * double(i) + 0.91 * double(k) + 0.1) + (norm_weight ? 1.0 : 0.0));
  }
}
}  // namespace

TEST_CASE("ViT-T/4 has 2,682,624 parameters with timm names") {
  ssl::vit<> v;
  CHECK(ssl::parameter_count(v) == 2682624);
  CHECK(v.feature_dim() == 192);
  CHECK(v.num_patches() == 49);
  auto params = ssl::parameters(v);
  CHECK(params.front().name == "cls_token");
  CHECK(params[1].name == "pos_embed");
  CHECK(params[1].p->value.shape() == shape{1, 50, 192});
  CHECK(params[2].name == "patch_embed.proj.weight");
  CHECK(params[4].name == "blocks.0.norm1.weight");
  CHECK(params[6].name == "blocks.0.attn.qkv.weight");
  CHECK(params.back().name == "norm.bias");
  // Init: trunc_normal(0.02) on the position table, xavier on the patch projection (bound sqrt(6/208)).
  const T& pos = params[1].p->value;
  const double sd = std::sqrt(pos.vec().squaredNorm() / double(pos.numel()));
  CHECK(sd > 0.017);
  CHECK(sd < 0.023);
  CHECK(params[2].p->value.vec().cwiseAbs().maxCoeff() <= std::sqrt(6.0f / 208.0f));
  CHECK(params[2].p->value.vec().cwiseAbs().maxCoeff() > 0.9f * std::sqrt(6.0f / 208.0f));
}

TEST_CASE("ViT-T/4 forward matches PyTorch on 28x28 and on 12x12 crops (bicubic pos-embed to 3x3)") {
  ssl_test::fixture fx("vit/vit_t4.json");
  ssl::vit<> v;
  auto params = ssl::parameters(v);
  const T sizes = fx.tensor("param_sizes");
  REQUIRE(sizes.numel() == int64_t(params.size()));
  for (size_t k = 0; k < params.size(); ++k) REQUIRE(params[k].p->value.numel() == int64_t(sizes[int64_t(k)]));
  set_formula_weights(params);
  const T x28 = fx.tensor("x28"), x12 = fx.tensor("x12");
  CHECK(ssl_test::rel_error(v.infer(x28), fx.tensor("cls28")) <= 1e-4);
  CHECK(ssl_test::rel_error(v.forward(x12).y, fx.tensor("cls12")) <= 1e-4);
  CHECK(ssl_test::rel_error(v.infer_tokens(x12), fx.tensor("tokens12")) <= 1e-4);
  v.set_pool(ssl::vit_pool::mean);
  CHECK(ssl_test::rel_error(v.forward(x28).y, fx.tensor("mean28")) <= 1e-4);
  CHECK(ssl_test::rel_error(v.infer(x12), fx.tensor("mean12")) <= 1e-4);
  const T attn = v.cls_attention(x28);
  CHECK(attn.shape() == shape{2, 3, 50});
  CHECK(ssl_test::rel_error(attn, fx.tensor("cls_attention28")) <= 1e-4);
}

TEST_CASE("a tiny ViT passes the gradient check (CLS and mean pooling, base grid and resized grid)") {
  ssl::vit<> v({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f},
               ssl::rng(4));
  ssl::rng g(5);
  // O(1) weights: at the 0.02 init the [CLS] row is tiny and the final LayerNorm too curved for
  // finite differences with a usable step.
  for (auto& p : ssl::parameters(v))
    for (int64_t i = 0; i < p.p->value.numel(); ++i) p.p->value[i] += 0.4f * g.normal();
  T x8(shape{2, 1, 8, 8}), x6(shape{2, 1, 6, 6});
  for (int64_t i = 0; i < x8.numel(); ++i) x8[i] = g.normal();
  for (int64_t i = 0; i < x6.numel(); ++i) x6[i] = g.normal();
  ssl::testing::gradient_check_options o;
  o.eps = 5e-3;
  o.max_checks = 12;
  for (auto pool : {ssl::vit_pool::cls, ssl::vit_pool::mean}) {
    v.set_pool(pool);
    auto r8 = ssl::testing::check_module_gradients(v, x8, o);
    INFO(r8.report());
    CHECK(r8.ok());
    auto r6 = ssl::testing::check_module_gradients(v, x6, o);  // 3x3 tokens: pos grid resized from 4x4
    INFO(r6.report());
    CHECK(r6.ok());
  }
}

TEST_CASE("vit masked token path: [CLS] + visible tokens, same in forward_tokens and infer_tokens") {
  ssl::vit<> v({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 2, .heads = 2}, ssl::rng(1));
  ssl::rng g(2);
  T x(shape{3, 1, 8, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  const auto m = ssl::random_token_mask(3, 16, 0.75f, ssl::rng(3));
  auto o = v.forward_tokens(x, &m);
  CHECK(o.y.shape() == shape{3, 5, 8});
  CHECK(ssl_test::rel_error(o.y, v.infer_tokens(x, &m)) <= 1e-6);
  // Masked-out patches get no gradient: changing them leaves the visible-token output unchanged.
  T x2 = x;
  for (int64_t l = 0; l < 16; ++l)
    if (m.mask[l] == 1.0f)
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 2; ++j) x2.at(0, 0, (l / 4) * 2 + i, (l % 4) * 2 + j) += 1.0f;
  CHECK(ssl_test::rel_error(v.infer_tokens(x2, &m), o.y) <= 1e-6);
  T dy(o.y.shape());
  for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = g.normal();
  const T dx = v.backward_tokens(o.saved, dy);
  for (int64_t l = 0; l < 16; ++l)
    if (m.mask[l] == 1.0f) CHECK(dx.at(0, 0, (l / 4) * 2, (l % 4) * 2) == 0.0f);
  const auto wrong = ssl::random_token_mask(2, 16, 0.5f, ssl::rng(3));
  CHECK_THROWS_AS(v.forward_tokens(x, &wrong), ssl::shape_error);
}

TEST_CASE("vit rejects bad images and configurations with typed errors") {
  ssl::vit<> v;
  CHECK_THROWS_AS(v.infer(T(shape{1, 3, 28, 28})), ssl::shape_error);
  CHECK_THROWS_AS(v.forward(T(shape{1, 1, 30, 28})), ssl::shape_error);
  CHECK_THROWS_AS(v.attention(T(shape{1, 1, 28, 28}), 6), ssl::value_error);
  CHECK_THROWS_AS(ssl::vit<>({.dim = 10, .heads = 3}), ssl::value_error);
  try {
    v.infer(T(shape{1, 3, 28, 28}));
  } catch (const ssl::shape_error& e) {
    CHECK(std::string(e.what()).find("(1, 3, 28, 28)") != std::string::npos);
  }
}
