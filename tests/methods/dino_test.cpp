#include <ssl/methods/dino.hpp>

#include "method_support.hpp"

using namespace method_test;

namespace {

ssl::vit_options tiny_vit() {
  return {.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2};
}
ssl::dino_head<> tiny_dino_head(int64_t out = 10) {
  return ssl::dino_head<>({.in_dim = 8, .hidden_dim = 12, .bottleneck_dim = 6, .out_dim = out}, ssl::rng(4));
}
auto make_dino(ssl::dino_options o = {}) {
  return ssl::dino_method<ssl::vit<>>(ssl::vit<>(tiny_vit(), ssl::rng(2)), tiny_dino_head(), o);
}
}  // namespace

static_assert(ssl::Method<ssl::dino_method<ssl::vit<>>>);
static_assert(ssl::Method<ssl::dino_method<ssl::convnet_s<>>>);

TEST_CASE("dino: train_step gradients (every student parameter) match finite differences, multi-crop + KoLeo") {
  auto m = make_dino({.koleo_weight = 0.1f});
  shake_parameters(m);
  const auto views = multi_crop(5, 2, 21);
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params,
                                  {.eps = 1e-3, .max_checks = 6});
  INFO(res.report());
  CHECK(res.ok());
  CHECK(res.checked > 60);
}

TEST_CASE("dino: the grouped multi-crop step equals the loss computed view by view") {
  auto m = make_dino();
  shake_parameters(m);
  const auto views = multi_crop(4, 3, 31);
  const float got = m.train_step(views).loss;
  // reference: every view through the student separately, the teacher on each global crop
  const int64_t B = 4, K = 10, V = int64_t(views.size());
  ssl::tensor<ssl::cpu> s(ssl::shape{V, B, K}), t(ssl::shape{2, B, K});
  for (int64_t v = 0; v < V; ++v) {
    const auto y = m.head().forward(m.encoder().forward(views[size_t(v)]).y).y;
    std::copy_n(y.data(), B * K, s.data() + v * B * K);
    if (v < 2) {
      const auto ty = m.teacher_head().infer(m.teacher_encoder().infer(views[size_t(v)]));
      std::copy_n(ty.data(), B * K, t.data() + v * B * K);
    }
  }
  ssl::dino ref(K, 0.1f, 0.07f);
  CHECK(got == Approx(ref(s, t).value).epsilon(1e-5));
  CHECK(m.last_dino_loss() == got);
}

TEST_CASE("dino: teacher starts as a copy, follows by a cosine EMA; the center moves after the step") {
  auto m = make_dino();
  auto student = ssl::parameters(m.encoder());
  auto teacher = ssl::parameters(m.teacher_encoder());
  for (size_t i = 0; i < student.size(); ++i) CHECK(max_diff(student[i].p->value, teacher[i].p->value) == 0.0);
  const auto views = multi_crop(6, 2, 41);
  ssl::param_list<ssl::cpu> all;
  m.collect(all, "");
  for (auto& r : all) r.p->grad.zero();
  m.train_step(views);
  // the teacher outputs of this step, for the expected center
  const auto x = ssl::concat_batch({&views[0], &views[1]});
  const auto tout = m.teacher_head().infer(m.teacher_encoder().infer(x));
  CHECK(max_diff(m.center(), ssl::tensor<ssl::cpu>(ssl::shape{10}, 0.0f)) == 0.0);  // unchanged by train_step
  ssl::sgd opt(all, {.lr = 0.5f});
  opt.step();
  std::vector<ssl::tensor<ssl::cpu>> before_t, before_s;
  for (size_t i = 0; i < student.size(); ++i) before_t.push_back(teacher[i].p->value), before_s.push_back(student[i].p->value);
  m.after_step({3, 11, 0});  // DINO's schedule index i = step - 1 = 2 of 11
  const double mom = 1 - (1 - 0.996) * (std::cos(M_PI * 2.0 / 11.0) + 1) / 2;
  CHECK(m.momentum() == Approx(mom).epsilon(1e-6));
  for (size_t i = 0; i < student.size(); ++i)
    for (int64_t k = 0; k < before_t[i].numel(); k += 5)
      CHECK(teacher[i].p->value[k] == Approx(mom * before_t[i][k] + (1 - mom) * before_s[i][k]).margin(1e-6));
  for (int64_t k = 0; k < 10; ++k) {
    double mean = 0;
    for (int64_t r = 0; r < 12; ++r) mean += tout[r * 10 + k];
    CHECK(m.center()[k] == Approx(0.1 * mean / 12).margin(1e-7));
  }
  CHECK(m.step_count() == 3);
  // the head's weight_g takes part in the EMA too (W3)
  auto th = ssl::parameters(m.teacher_head());
  CHECK(th[6].name == "last_layer.weight_g");
}

TEST_CASE("dino: teacher temperature warms up linearly, then stays") {
  auto m = make_dino({.teacher_temperature_start = 0.04f, .teacher_temperature = 0.07f, .teacher_warmup_steps = 10});
  CHECK(m.teacher_temperature_at(0) == Approx(0.04f));
  CHECK(m.teacher_temperature_at(5) == Approx(0.055f));
  CHECK(m.teacher_temperature_at(10) == Approx(0.07f));
  CHECK(m.teacher_temperature_at(1000) == Approx(0.07f));
  // the step counter drives it: same views, sharper teacher at step 0 than after warm-up
  const auto views = multi_crop(4, 0, 51);
  m.train_step(views);
  CHECK(m.loss().teacher_temperature() == Approx(0.04f));
  m.set_step_count(20);
  m.train_step(views);
  CHECK(m.loss().teacher_temperature() == Approx(0.07f));
  CHECK(make_dino(ssl::dino_options::w3()).teacher_temperature_at(0) == Approx(0.04f));
}

TEST_CASE("dino: the last layer is frozen for the configured steps, then trains") {
  auto m = make_dino({.freeze_last_layer_steps = 2});
  shake_parameters(m);
  const auto views = multi_crop(4, 1, 61);
  auto& v = m.head().weight_v();
  for (int64_t step : {0, 1, 2}) {
    m.set_step_count(step);
    v.grad.zero();
    m.head().mlp_layer(0).weight().grad.zero();
    m.train_step(views);
    INFO("step " << step);
    CHECK(v.frozen == (step < 2));
    CHECK((v.grad.vec().norm() == 0) == (step < 2));
    CHECK(m.head().mlp_layer(0).weight().grad.vec().norm() > 0);
  }
  // an optimizer skips the frozen layer
  m.set_step_count(0);
  ssl::param_list<ssl::cpu> all;
  m.collect(all, "");
  for (auto& r : all) r.p->grad.zero();
  m.train_step(views);
  const auto before = v.value;
  ssl::adamw opt(all, {.lr = 0.1f});
  opt.step();
  CHECK(max_diff(v.value, before) == 0.0);
}

TEST_CASE("dino: collapse monitoring exposes the loss and ln(out_dim)") {
  auto m = make_dino();
  CHECK(m.collapse_reference() == Approx(std::log(10.0)));
  // uniform student and teacher outputs: every row of the last layer the same -> equal logits -> loss = ln K
  auto& v = m.head().weight_v().value;
  v.zero();
  for (int64_t o = 0; o < 10; ++o) v[o * 6] = 1.0f;
  m.teacher_head().weight_v().value = m.head().weight_v().value;
  m.train_step(multi_crop(4, 1, 71));
  CHECK(m.last_dino_loss() == Approx(std::log(10.0)).epsilon(1e-4));
  CHECK(m.collapse_check().collapsed);
  auto healthy = make_dino();
  shake_parameters(healthy, 1.0f);
  healthy.train_step(multi_crop(4, 1, 72));
  CHECK(!healthy.collapse_check().collapsed);
}

TEST_CASE("dino: works with convnet_s (BN teacher in train mode) and learns on fixed views") {
  ssl::dino_method<ssl::convnet_s<>> m(ssl::convnet_s<>(1, ssl::rng(1)),
                                       ssl::dino_head<>({.in_dim = 256, .hidden_dim = 32, .bottleneck_dim = 16, .out_dim = 32}),
                                       {.teacher_temperature = 0.04f});
  auto views = two_views(8, 1, 12, 12, 81);
  views.push_back(random_batch(8, 1, 6, 6, 82));
  auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 12, 0.05f);
  CHECK(std::isfinite(last));
  CHECK(last < first);
  // teacher BN statistics moved (train-mode forward), so its running mean is no longer 0
  ssl::methods_detail::buffer_list<> bufs;
  m.collect_buffers(bufs, "");
  bool found = false;
  for (auto& [name, t] : bufs)
    if (name == "teacher.backbone.1.running_mean") {
      found = true;
      CHECK(t->vec().norm() > 0);
    }
  CHECK(found);
}

TEST_CASE("dino: bad compositions and views throw typed errors naming what was expected") {
  expect_shape_error_naming(
      [] { ssl::dino_method<ssl::vit<>>(ssl::vit<>(tiny_vit()), ssl::dino_head<>({.in_dim = 9, .out_dim = 10})); },
      {"features of size 8", "in_dim 9"});
  auto m = make_dino();
  CHECK_THROWS_AS(m.train_step({random_batch(4, 1, 8, 8, 1)}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(4, 1, 8, 8, 1), random_batch(4, 1, 4, 4, 2)}); },
                            {"global crop 1", "(4, 1, 4, 4)", "(4, 1, 8, 8)"});
  expect_shape_error_naming([&] { m.train_step({random_batch(4, 1, 8, 8, 1), random_batch(4, 1, 8, 8, 2), random_batch(3, 1, 4, 4, 3)}); },
                            {"view 2", "(3, 1, 4, 4)"});
  CHECK_THROWS_AS(make_dino({.momentum_base = 1.5f}), ssl::value_error);
}
