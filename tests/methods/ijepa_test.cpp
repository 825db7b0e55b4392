// I-JEPA: every gradient of a training step against finite differences, the loss rebuilt from
// its parts, the EMA target and its schedule, reproducible masks, checkpoint buffers, learning,
// bad input.
#include <catch2/catch.hpp>
#include <ssl/methods/ijepa.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/testing/gradient_check.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
using tiny_ijepa = ssl::ijepa<ssl::vit<>, ssl::ijepa_predictor<>>;
const ssl::multiblock_mask_options tiny_masks{.targets = 2, .target_scale_min = 0.2f, .target_scale_max = 0.25f,
                                              .min_keep = 2};
tiny_ijepa make_tiny(uint64_t seed = 1) {
  // 8x8 images, patch 2 -> a 4 x 4 grid; encoder dim 8, predictor dim 8.
  ssl::vit<> enc({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f},
                 ssl::rng(seed));
  ssl::ijepa_predictor<> pred({.in_dim = 8, .dim = 8, .depth = 1, .heads = 2, .mlp_ratio = 2.0f, .grid = 4},
                              ssl::rng(seed + 1));
  return tiny_ijepa(std::move(enc), std::move(pred), {.masks = tiny_masks, .seed = 9});
}
T images(int64_t n, int64_t side, uint64_t seed) {
  ssl::rng g(seed);
  T x(shape{n, 1, side, side});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.uniform();
  return x;
}
/// Moves the target encoder away from the context encoder (noise on its weights), so that the two differ.
void separate_target(tiny_ijepa& m) {
  ssl::param_list<> t;
  m.target_encoder().collect(t, "");
  ssl::rng g(11);
  for (auto& e : t)
    for (int64_t i = 0; i < e.p->value.numel(); ++i) e.p->value[i] += g.normal(0.0f, 0.05f);
}
}  // namespace

static_assert(ssl::Method<tiny_ijepa>);

TEST_CASE("I-JEPA train_step gradients (encoder and predictor) match finite differences") {
  tiny_ijepa m = make_tiny();
  separate_target(m);
  const std::vector<T> views{images(3, 8, 3)};
  ssl::param_list<> params;
  m.collect(params, "");
  std::erase_if(params, [](const auto& e) { return e.p->frozen; });
  for (auto& p : params) p.p->grad.zero();
  m.set_step_count(0);
  const float loss = m.train_step(views).loss;
  CHECK(std::isfinite(loss));
  CHECK(loss > 0.0f);
  std::vector<T> values, grads;
  for (auto& p : params) {
    values.push_back(p.p->value);
    grads.push_back(p.p->grad);
  }
  auto L = [&](std::vector<T>& vals) {
    for (size_t k = 0; k < params.size(); ++k) params[k].p->value = vals[k];
    m.set_step_count(0);  // the same masks every evaluation
    return double(m.train_step(views).loss);
  };
  ssl::testing::gradient_check_options o;
  o.eps = 2e-3;
  o.max_checks = 4;
  auto r = ssl::testing::check_function_gradients(L, values, grads, o);
  INFO(r.report());
  CHECK(r.ok());
  CHECK(r.checked > 80);
}

TEST_CASE("I-JEPA loss = smooth L1 between the predictor's outputs and LN(target tokens) at every target block") {
  tiny_ijepa m = make_tiny();
  separate_target(m);
  const T x = images(4, 8, 4);
  const auto mk = m.masks_for_step(4, 0);
  // Rebuilt from the public parts, one target block at a time.
  const T h_all = m.target_encoder().infer_tokens(x);  // (4, 17, 8)
  const T ctx = m.encoder().infer_tokens(x, &mk.context);
  double total = 0, count = 0;
  for (const auto& t : mk.targets) {
    const T pred = m.predictor().infer(ctx, mk.context, t, mk.target_tokens);
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t k = 0; k < mk.target_tokens; ++k) {
        const float* h = h_all.data() + (n * 17 + 1 + t[size_t(n * mk.target_tokens + k)]) * 8;
        double mean = 0, var = 0;
        for (int c = 0; c < 8; ++c) mean += h[c] / 8.0;
        for (int c = 0; c < 8; ++c) var += (h[c] - mean) * (h[c] - mean) / 8.0;
        for (int c = 0; c < 8; ++c) {
          const double target = (h[c] - mean) / std::sqrt(var + 1e-5);
          const double d = std::abs(double(pred[(n * mk.target_tokens + k) * 8 + c]) - target);
          total += d < 1.0 ? 0.5 * d * d : d - 0.5;
          count += 1;
        }
      }
  }
  m.set_step_count(0);
  CHECK(m.train_step({x}).loss == Approx(total / count).epsilon(1e-4));
  // the target encoder got no gradient and the step did not change it
  ssl::param_list<> t;
  m.target_encoder().collect(t, "");
  for (auto& e : t) CHECK(e.p->grad.vec().norm() == 0.0f);
}

TEST_CASE("I-JEPA target encoder: an EMA of the encoder, momentum linear from 0.996 to 1") {
  tiny_ijepa m = make_tiny();
  separate_target(m);
  ssl::param_list<> enc, tgt;
  m.encoder().collect(enc, "");
  m.target_encoder().collect(tgt, "");
  const float e0 = enc[0].p->value[0], t0 = tgt[0].p->value[0];
  REQUIRE(e0 != t0);
  CHECK(m.momentum() == 0.996f);
  m.after_step({.step = 50, .total_steps = 100});
  CHECK(m.momentum() == Approx(0.998f));
  CHECK(tgt[0].p->value[0] == Approx(0.998f * t0 + 0.002f * e0).epsilon(1e-6));
  m.after_step({.step = 100, .total_steps = 100});
  CHECK(m.momentum() == 1.0f);
  const float t1 = tgt[0].p->value[0];
  m.after_step({.step = 120, .total_steps = 100});  // past the plan: stays 1, the target is frozen
  CHECK(tgt[0].p->value[0] == t1);
  CHECK(m.step_count() == 120);
}

TEST_CASE("I-JEPA masks are reproducible from (seed, step); buffers list the target encoder") {
  tiny_ijepa a = make_tiny(), b = make_tiny();
  const std::vector<T> views{images(4, 8, 5)};
  const float la = a.train_step(views).loss;
  CHECK(b.train_step(views).loss == la);
  CHECK(a.step_count() == 1);
  CHECK(a.masks_for_step(4, 0).context.keep == b.masks_for_step(4, 0).context.keep);
  const auto m0 = a.masks_for_step(4, 0), m1 = a.masks_for_step(4, 1);
  CHECK((m0.context.keep != m1.context.keep || m0.targets != m1.targets));
  ssl::methods_detail::buffer_list<> buffers;
  a.collect_buffers(buffers, "m");
  ssl::param_list<> tp;
  a.target_encoder().collect(tp, "");
  REQUIRE(buffers.size() == tp.size());
  CHECK(buffers[0].first == "m.target_encoder." + tp[0].name);
}

TEST_CASE("I-JEPA learns: the loss on a fixed batch falls under AdamW") {
  tiny_ijepa m = make_tiny(2);
  const std::vector<T> views{images(8, 8, 6)};
  ssl::param_list<> params;
  m.collect(params, "");
  ssl::adamw<> opt(params, {.lr = 3e-3f, .weight_decay = 0.0f});
  float first = 0, last = 0;
  for (int s = 0; s < 60; ++s) {
    for (auto& p : params) p.p->grad.zero();
    m.set_step_count(0);  // the same masks: the batch's loss must fall
    const float l = m.train_step(views).loss;
    opt.step();
    m.after_step({.step = s + 1, .total_steps = 60});
    if (s == 0) first = l;
    last = l;
  }
  INFO("first " << first << ", last " << last);
  CHECK(last < 0.5f * first);
}

TEST_CASE("I-JEPA bad views and mismatched parts throw typed errors") {
  tiny_ijepa m = make_tiny();
  const T x = images(2, 8, 6);
  CHECK_THROWS_AS(m.train_step({x, x}), ssl::value_error);
  CHECK_THROWS_AS(m.train_step({images(2, 12, 1)}), ssl::shape_error);
  ssl::vit<> enc({.image_size = 8, .patch = 2, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2}, ssl::rng(1));
  CHECK_THROWS_AS(tiny_ijepa(enc, ssl::ijepa_predictor<>({.in_dim = 6, .dim = 8, .heads = 2, .grid = 4})),
                  ssl::shape_error);
  CHECK_THROWS_AS(tiny_ijepa(enc, ssl::ijepa_predictor<>({.in_dim = 8, .dim = 8, .heads = 2, .grid = 5})),
                  ssl::shape_error);
  CHECK_THROWS_AS(tiny_ijepa(enc, ssl::ijepa_predictor<>({.in_dim = 8, .dim = 8, .heads = 2, .grid = 4}),
                             {.momentum_base = 1.5f}),
                  ssl::value_error);
}
