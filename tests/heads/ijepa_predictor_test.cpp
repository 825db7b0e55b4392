// ijepa_predictor: shapes and names, gradients against finite differences (parameters and the
// context tokens; sin-cos and learned positions), targets that are also context patches, infer ==
// forward, bad input.
#include <catch2/catch.hpp>
#include <ssl/heads/ijepa_predictor.hpp>
#include <ssl/pretext/multiblock_mask.hpp>
#include <ssl/testing/gradient_check.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
ssl::ijepa_predictor<> make(ssl::pos_embed_kind pos = ssl::pos_embed_kind::sincos) {
  return ssl::ijepa_predictor<>({.in_dim = 6, .dim = 8, .depth = 2, .heads = 2, .mlp_ratio = 2.0f, .grid = 4, .pos = pos},
                                ssl::rng(3));
}
T random(shape s, uint64_t seed) {
  ssl::rng g(seed);
  T x(s);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal(0.0f, 1.0f);
  return x;
}
ssl::multiblock_masks masks(int64_t n) {
  return ssl::multiblock_mask(n, 4, 4, ssl::rng(7),
                              {.targets = 2, .target_scale_min = 0.2f, .target_scale_max = 0.25f, .min_keep = 2});
}
}  // namespace

TEST_CASE("ijepa_predictor: (N, K_t, D_enc) predictions, official parameter names, infer == forward") {
  auto p = make();
  const auto m = masks(3);
  const T ctx = random(shape{3, 1 + m.context.kept, 6}, 1);
  auto out = p.forward(ctx, m.context, m.targets[0], m.target_tokens);
  CHECK(out.y.shape() == shape{3, m.target_tokens, 6});
  const T again = p.infer(ctx, m.context, m.targets[0], m.target_tokens);
  for (int64_t i = 0; i < again.numel(); ++i) CHECK(again[i] == Approx(out.y[i]).margin(1e-6));
  // another target block: other predictions from the same context
  const T other = p.infer(ctx, m.context, m.targets[1], m.target_tokens);
  CHECK((other.vec() - again.vec()).norm() > 1e-3f);
  auto params = ssl::parameters(p, "predictor");
  CHECK(params[0].name == "predictor.embed.weight");
  CHECK(params[2].name == "predictor.mask_token");
  CHECK(params[3].name == "predictor.pos_embed");
  CHECK(params.back().name == "predictor.proj.bias");
  // the default: ViT-T/4 tokens (192) through a 96-wide, 4-deep predictor on the 7 x 7 grid
  ssl::ijepa_predictor<> d;
  CHECK(d.num_patches() == 49);
  CHECK(ssl::parameter_count(d) > 400000);
}

TEST_CASE("ijepa_predictor: parameter and context gradients match finite differences") {
  for (auto pos : {ssl::pos_embed_kind::sincos, ssl::pos_embed_kind::learned}) {
    INFO("learned positions " << (pos == ssl::pos_embed_kind::learned));
    auto p = make(pos);
    const auto m = masks(2);
    const T ctx = random(shape{2, 1 + m.context.kept, 6}, 2);
    const T w = random(shape{2, m.target_tokens, 6}, 3);  // L = <w, pred>
    ssl::param_list<> params;
    p.collect(params, "");
    std::erase_if(params, [](const auto& e) { return e.p->frozen; });  // sin-cos table: no gradient
    for (auto& e : params) e.p->grad.zero();
    auto out = p.forward(ctx, m.context, m.targets[1], m.target_tokens);
    const T dctx = p.backward(out.saved, w);
    std::vector<T> values{ctx}, grads{dctx};
    for (auto& e : params) {
      values.push_back(e.p->value);
      grads.push_back(e.p->grad);
    }
    auto L = [&](std::vector<T>& v) {
      for (size_t k = 0; k < params.size(); ++k) params[k].p->value = v[k + 1];
      const T y = p.infer(v[0], m.context, m.targets[1], m.target_tokens);
      double s = 0;
      for (int64_t i = 0; i < y.numel(); ++i) s += double(y[i]) * double(w[i]);
      return s;
    };
    ssl::testing::gradient_check_options o;
    o.eps = 1e-3;
    o.max_checks = 6;
    auto r = ssl::testing::check_function_gradients(L, values, grads, o);
    INFO(r.report());
    CHECK(r.ok());
    CHECK(r.checked > 80);
    // the mask token is used at every target row: its gradient is not zero
    CHECK(p.mask_token().grad.vec().norm() > 0.0f);
  }
}

TEST_CASE("ijepa_predictor: a target patch that is also a context patch is predicted from a mask token") {
  // Context keeps patches 0..5 of a 4 x 4 grid; the targets are patches 4..7 (4 and 5 overlap).
  ssl::token_mask c;
  c.batch = 1;
  c.tokens = 16;
  c.kept = 6;
  c.keep = {0, 1, 2, 3, 4, 5};
  c.restore.resize(16);
  for (int32_t i = 0; i < 16; ++i) c.restore[size_t(i)] = i;
  auto p = make();
  const T ctx = random(shape{1, 7, 6}, 4);
  const std::vector<int32_t> targets{4, 5, 6, 7};
  auto out = p.forward(ctx, c, targets, 4);
  CHECK(out.y.shape() == shape{1, 4, 6});
  const T w = random(shape{1, 4, 6}, 5);
  const T dctx = p.backward(out.saved, w);
  CHECK(dctx.shape() == ctx.shape());
  CHECK(std::isfinite(dctx.vec().sum()));
}

TEST_CASE("ijepa_predictor: bad context, targets or options throw typed errors") {
  auto p = make();
  const auto m = masks(2);
  const T ctx = random(shape{2, 1 + m.context.kept, 6}, 1);
  CHECK_THROWS_AS(p.forward(random(shape{2, 1 + m.context.kept, 5}, 1), m.context, m.targets[0], m.target_tokens),
                  ssl::shape_error);
  CHECK_THROWS_AS(p.forward(random(shape{2, m.context.kept, 6}, 1), m.context, m.targets[0], m.target_tokens),
                  ssl::shape_error);
  CHECK_THROWS_AS(p.forward(ctx, m.context, m.targets[0], m.target_tokens + 1), ssl::shape_error);
  std::vector<int32_t> bad = m.targets[0];
  bad[0] = 16;
  CHECK_THROWS_AS(p.forward(ctx, m.context, bad, m.target_tokens), ssl::value_error);
  const auto wide = ssl::multiblock_mask(2, 5, 5, ssl::rng(1), {.targets = 1, .min_keep = 2});
  CHECK_THROWS_AS(p.forward(ctx, wide.context, wide.targets[0], wide.target_tokens), ssl::shape_error);
  CHECK_THROWS_AS(ssl::ijepa_predictor<>({.dim = 10, .heads = 3}), ssl::value_error);
  auto out = p.forward(ctx, m.context, m.targets[0], m.target_tokens);
  CHECK_THROWS_AS(p.backward(out.saved, random(shape{2, m.target_tokens + 1, 6}, 1)), ssl::shape_error);
}
