#include "method_support.hpp"

using namespace method_test;

namespace {
auto make_byol(ssl::byol_options o = {}) {
  return ssl::byol_method(tiny_encoder(64), tiny_head(16, 32, 8), tiny_head(8, 16, 8, 7), o);
}
auto make_simsiam() {
  return ssl::simsiam_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64), tiny_head(16, 32, 8),
                                                                         tiny_head(8, 16, 8, 7));
}
}  // namespace

TEST_CASE("byol: train_step gradients match finite differences of its loss") {
  auto m = make_byol();
  const auto views = two_views(6, 1, 8, 8, 11);
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 8);
  INFO(res.report());
  CHECK(res.ok());
}

TEST_CASE("simsiam: train_step gradients are those of the loss with the targets held fixed") {
  // SimSiam's targets come from the same network under stop-gradient: the finite differences are
  // taken of simsiam(p(theta), swap(z0)) with z0 the projections at the unperturbed weights.
  auto m = make_simsiam();
  static_assert(!decltype(m)::has_target);
  const auto views = two_views(6, 1, 8, 8, 12);
  const auto x = ssl::concat_batch({&views[0], &views[1]});
  const auto z0 = ssl::methods_detail::swap_halves(m.projector().forward(m.encoder().forward(x).y).y);
  auto frozen_target_loss = [&] {
    auto z = m.projector().forward(m.encoder().forward(x).y).y;
    return ssl::simsiam{}(m.predictor().forward(z).y, z0).value;
  };
  // the two agree at the unperturbed point
  CHECK(m.train_step(views).loss == Approx(frozen_target_loss()).epsilon(1e-5));
  ssl::param_list<ssl::cpu> params;
  m.collect(params, "");
  for (auto& r : params) r.p->grad.zero();
  m.train_step(views);
  std::vector<ssl::tensor<ssl::cpu>> values, grads;
  for (size_t i = 0; i < 8; ++i) values.push_back(params[i].p->value), grads.push_back(params[i].p->grad);
  auto loss = [&](std::vector<ssl::tensor<ssl::cpu>>& in) {
    for (size_t k = 0; k < in.size(); ++k) params[k].p->value = in[k];
    return double(frozen_target_loss());
  };
  auto res = ssl::testing::check_function_gradients(loss, values, grads, {.eps = 1e-3});
  INFO(res.report());
  CHECK(res.ok());
}

TEST_CASE("byol: the target starts as a copy and follows the online network by a cosine EMA") {
  auto m = make_byol();
  auto online = ssl::parameters(m.encoder());
  auto target = ssl::parameters(m.target_encoder());
  REQUIRE(online.size() == target.size());
  for (size_t i = 0; i < online.size(); ++i) CHECK(max_diff(online[i].p->value, target[i].p->value) == 0.0);
  // Move the online weights, remember both, then apply one EMA step at 10% progress.
  const auto views = two_views(6, 1, 8, 8, 13);
  ssl::param_list<ssl::cpu> all;
  m.collect(all, "");
  for (auto& r : all) r.p->grad.zero();
  m.train_step(views);
  ssl::sgd opt(all, {.lr = 0.5f});
  opt.step();
  std::vector<ssl::tensor<ssl::cpu>> before_t, before_o;
  for (size_t i = 0; i < online.size(); ++i) {
    before_t.push_back(target[i].p->value);
    before_o.push_back(online[i].p->value);
  }
  m.after_step({1, 10, 0});
  const double tau = 1 - (1 - 0.996) * (std::cos(M_PI * 0.1) + 1) / 2;
  CHECK(m.tau() == Approx(tau).epsilon(1e-6));
  for (size_t i = 0; i < online.size(); ++i)
    for (int64_t k = 0; k < before_t[i].numel(); k += 7)
      CHECK(target[i].p->value[k] ==
            Approx(tau * before_t[i][k] + (1 - tau) * before_o[i][k]).margin(1e-6));
  // At the end of training tau = 1: the target no longer moves.
  const auto frozen = target[0].p->value;
  m.after_step({10, 10, 0});
  CHECK(m.tau() == 1.0f);
  for (int64_t k = 0; k < frozen.numel(); ++k) CHECK(target[0].p->value[k] == frozen[k]);
}

TEST_CASE("byol: checkpoint buffers include the target network") {
  auto m = make_byol();
  ssl::methods_detail::buffer_list<> b;
  m.collect_buffers(b, "");
  bool target_weight = false, online_bn = false;
  for (auto& [name, t] : b) {
    target_weight |= name == "target_encoder.layers.0.weight";
    online_bn |= name.rfind("projector.1.running_mean", 0) == 0;
  }
  CHECK(target_weight);
  CHECK(online_bn);
}

TEST_CASE("byol: a bad composition throws shape_error naming both sizes") {
  expect_shape_error_naming([] { ssl::byol_method(tiny_encoder(64, 16), tiny_head(12, 32, 8), tiny_head(8, 16, 8)); },
                            {"16", "12", "byol"});
  expect_shape_error_naming([] { ssl::byol_method(tiny_encoder(64, 16), tiny_head(16, 32, 8), tiny_head(6, 16, 8)); },
                            {"8", "6", "predictor"});
  auto m = make_byol();
  std::vector<ssl::tensor<ssl::cpu>> bad{random_batch(4, 1, 8, 8, 1), random_batch(5, 1, 8, 8, 2)};
  expect_shape_error_naming([&] { m.train_step(bad); }, {"(4, 1, 8, 8)", "(5, 1, 8, 8)"});
}

TEST_CASE("byol and simsiam: a few steps lower the loss on a tiny problem") {
  const auto views = two_views(16, 1, 8, 8, 14);
  {
    auto m = make_byol();
    auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
    INFO("byol " << first << " -> " << last);
    CHECK(last < 0.7f * first);
  }
  {
    auto m = make_simsiam();
    auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
    INFO("simsiam " << first << " -> " << last);
    CHECK(last < first - 0.1f);
  }
}
