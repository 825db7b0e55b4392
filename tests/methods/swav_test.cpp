// SwAV as a method (swav_method<E, H>): the step's gradients against finite differences (the
// prototypes' on the unit sphere they are kept on), the grouped multi-crop step against a crop-by-crop
// reference, prototype freezing and normalisation, the queue, learning, checkpoint buffers, errors.
#include <ssl/methods/swav.hpp>

#include "method_support.hpp"

using namespace method_test;

namespace {
ssl::vit_options tiny_vit() { return {.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2}; }
ssl::projection_mlp<> tiny_projector(bool bn = true) {
  return ssl::projection_mlp<>({.in_dim = 8, .hidden_dim = 12, .out_dim = 6, .batch_norm = bn}, ssl::rng(5));
}
auto make_swav(ssl::swav_options o = {.freeze_prototypes_steps = 0}, bool bn = true, int64_t prototypes = 10) {
  return ssl::swav_method<ssl::vit<>>(ssl::vit<>(tiny_vit(), ssl::rng(2)), tiny_projector(bn),
                                      ssl::swav_prototypes<>(6, prototypes, ssl::rng(4)), o);
}
/// The scores (V, B, K) of every crop run on its own (no BatchNorm in the projector: the same as grouped).
template <class M>
ssl::tensor<ssl::cpu> crop_by_crop_scores(M& m, const std::vector<ssl::tensor<ssl::cpu>>& views) {
  const int64_t V = int64_t(views.size()), B = views[0].dim(0), K = m.prototypes().count();
  ssl::tensor<ssl::cpu> s(ssl::shape{V, B, K});
  for (int64_t v = 0; v < V; ++v) {
    const auto y = m.prototypes().infer(m.projector().forward(m.encoder().forward(views[size_t(v)]).y).y);
    std::copy_n(y.data(), B * K, s.data() + v * B * K);
  }
  return s;
}
/// The scores (V, B, K) a train_step computes, from the method's parts: prototypes normalised, the
/// encoder per crop (a ViT: no BatchNorm, so grouping changes nothing), one projector call on every
/// crop's features in crop order (its BatchNorm over all crops, as the step).
template <class M>
ssl::tensor<ssl::cpu> step_scores(M& m, const std::vector<ssl::tensor<ssl::cpu>>& views) {
  m.prototypes().normalize();
  std::vector<ssl::tensor<ssl::cpu>> feats;
  for (const auto& v : views) feats.push_back(m.encoder().forward(v).y);
  std::vector<const ssl::tensor<ssl::cpu>*> parts;
  for (const auto& f : feats) parts.push_back(&f);
  ssl::tensor<ssl::cpu> s = m.prototypes().infer(m.projector().forward(ssl::concat_batch(parts)).y);
  s.reshape(ssl::shape{int64_t(views.size()), views[0].dim(0), m.prototypes().count()});
  return s;
}
double row_norm(const ssl::tensor<ssl::cpu>& w, int64_t r) {
  double s = 0;
  for (int64_t d = 0; d < w.dim(1); ++d) s += double(w[r * w.dim(1) + d]) * w[r * w.dim(1) + d];
  return std::sqrt(s);
}
}  // namespace

static_assert(ssl::Method<ssl::swav_method<ssl::vit<>>>);
static_assert(ssl::Method<ssl::swav_method<ssl::convnet_s<>>>);

TEST_CASE("swav: train_step gradients match finite differences of the loss with the codes held fixed") {
  // the codes are a stop-gradient target computed from the same network, so the finite differences
  // re-score the crops with the perturbed parameters against the codes of the unperturbed step
  auto m = make_swav();
  // a moderate shake: at init the tiny ViT's features barely differ, so the projector's BatchNorm
  // (variance near its eps) curves the loss sharply; at 0.3 the attention softmax does
  shake_parameters(m, 0.1f);
  const auto views = multi_crop(5, 2, 21);
  ssl::param_list<ssl::cpu> ps;
  m.collect(ps, "");
  REQUIRE(ps.back().name == "prototypes.weight");
  for (auto& r : ps) r.p->grad.zero();
  const float loss = m.train_step(views).loss;
  const ssl::tensor<ssl::cpu> codes = m.loss().codes(step_scores(m, views));
  CHECK(m.loss().with_codes(step_scores(m, views), codes).value == Approx(loss).epsilon(1e-6));
  // every parameter but the prototypes (next test: they live on the unit sphere)
  std::vector<ssl::tensor<ssl::cpu>> values, grads;
  for (size_t i = 0; i + 1 < ps.size(); ++i) {
    values.push_back(ps[i].p->value);
    grads.push_back(ps[i].p->grad);
  }
  auto fixed_codes_loss = [&](std::vector<ssl::tensor<ssl::cpu>>& in) {
    for (size_t i = 0; i < in.size(); ++i) ps[i].p->value = in[i];
    return double(m.loss().with_codes(step_scores(m, views), codes).value);
  };
  auto res = ssl::testing::check_function_gradients(fixed_codes_loss, values, grads, {.eps = 1e-3, .max_checks = 6});
  INFO(res.report());
  CHECK(res.ok());
  CHECK(res.checked > 50);
}

TEST_CASE("swav: the prototypes' gradient matches finite differences along the unit sphere") {
  // the step normalises the rows of C first, so the loss as a function of C sees only the part of the
  // gradient tangent to each row: (I - c c^T) g, which is what finite differences measure
  auto m = make_swav();
  shake_parameters(m, 0.2f);
  const auto views = multi_crop(6, 1, 22);
  auto& C = m.prototypes().weight();
  C.grad.zero();
  m.train_step(views);
  const ssl::tensor<ssl::cpu> unit = C.value;  // normalised by the step
  const ssl::tensor<ssl::cpu> codes = m.loss().codes(step_scores(m, views));
  ssl::tensor<ssl::cpu> tangent = C.grad;
  const int64_t K = unit.dim(0), D = unit.dim(1);
  for (int64_t k = 0; k < K; ++k) {
    CHECK(row_norm(unit, k) == Approx(1.0).epsilon(1e-6));
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += double(unit[k * D + d]) * C.grad[k * D + d];
    for (int64_t d = 0; d < D; ++d) tangent[k * D + d] -= float(dot) * unit[k * D + d];
  }
  auto loss = [&](std::vector<ssl::tensor<ssl::cpu>>& in) {
    C.value = in[0];
    return double(m.loss().with_codes(step_scores(m, views), codes).value);  // step_scores normalises C
  };
  auto res = ssl::testing::check_function_gradients(loss, {unit}, {tangent}, {.eps = 1e-3, .max_checks = 60});
  INFO(res.report());
  CHECK(res.ok());
}

TEST_CASE("swav: the grouped multi-crop step equals the loss computed crop by crop") {
  auto m = make_swav({.freeze_prototypes_steps = 0}, /*bn=*/false);
  shake_parameters(m);
  const auto views = multi_crop(4, 3, 31);
  const float got = m.train_step(views).loss;  // normalises the prototypes first, as the reference needs
  const auto s = crop_by_crop_scores(m, views);
  CHECK(got == Approx(ssl::swav()(s).value).epsilon(1e-5));
  // one assigned crop: fewer pairs, another value
  auto one = make_swav({.assign_crops = 1, .freeze_prototypes_steps = 0}, false);
  shake_parameters(one);
  const float got1 = one.train_step(views).loss;
  CHECK(got1 == Approx(ssl::swav(0.1f, 0.05f, 3, 1)(crop_by_crop_scores(one, views)).value).epsilon(1e-5));
}

TEST_CASE("swav: prototypes are renormalised every step and frozen for freeze_prototypes_steps") {
  auto m = make_swav({.freeze_prototypes_steps = 2});
  auto& C = m.prototypes().weight();
  CHECK(row_norm(C.value, 0) < 0.9);  // U(+-1/sqrt(6)) init: not unit yet
  const auto views = two_views(6, 1, 8, 8, 41);
  ssl::param_list<ssl::cpu> ps;
  m.collect(ps, "");
  ssl::sgd opt(ps, {.lr = 0.5f});
  for (int64_t s = 0; s < 3; ++s) {
    for (auto& r : ps) r.p->grad.zero();
    m.train_step(views);
    for (int64_t k = 0; k < C.value.dim(0); ++k) CHECK(row_norm(C.value, k) == Approx(1.0).epsilon(1e-6));
    const bool frozen = s < 2;
    CHECK(m.prototypes().frozen() == frozen);
    double g = 0;
    for (int64_t i = 0; i < C.grad.numel(); ++i) g += std::abs(C.grad[i]);
    CHECK((g == 0.0) == frozen);
    const ssl::tensor<ssl::cpu> normalised = C.value;
    opt.step();  // skips frozen parameters
    CHECK((max_diff(C.value, normalised) == 0.0) == frozen);
    m.after_step(ssl::step_info{s + 1, 3, 0});
    CHECK(m.step_count() == s + 1);
  }
}

TEST_CASE("swav: the queue fills from queue_start_step, then joins the codes' Sinkhorn-Knopp") {
  const int64_t B = 4, Q = 6;
  auto m = make_swav({.freeze_prototypes_steps = 0, .queue_length = Q, .queue_start_step = 1}, /*bn=*/false);
  shake_parameters(m);
  REQUIRE(m.queue().shape() == ssl::shape{2, Q, 6});
  const auto views = multi_crop(B, 1, 51);
  m.train_step(views);
  m.after_step({1, 10, 0});
  CHECK(m.queue_filled() == 0);  // step 0 is before queue_start_step
  m.train_step(views);
  m.after_step({2, 10, 0});
  CHECK(m.queue_filled() == B);
  CHECK(!m.queue_full());
  m.train_step(views);
  CHECK(!m.last_step_used_queue());
  m.after_step({3, 10, 0});
  CHECK(m.queue_filled() == Q);  // B + B rows, capped at Q
  REQUIRE(m.queue_full());
  // queue rows are unit embeddings (the second batch's rows 0, 1 at [4, 6), its rows 2, 3 wrapped to [0, 2))
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t r = 0; r < Q; ++r) {
      double n = 0;
      for (int64_t d = 0; d < 6; ++d) n += double(m.queue()[(a * Q + r) * 6 + d]) * m.queue()[(a * Q + r) * 6 + d];
      CHECK(std::sqrt(n) == Approx(1.0).epsilon(1e-5));
    }
  const float got = m.train_step(views).loss;
  CHECK(m.last_step_used_queue());
  const auto s = crop_by_crop_scores(m, views);
  ssl::tensor<ssl::cpu> qs = m.prototypes().score_normalized(m.queue().reshaped(ssl::shape{2 * Q, 6}));
  qs.reshape(ssl::shape{2, Q, 10});
  CHECK(got == Approx(ssl::swav()(s, qs).value).epsilon(1e-5));
  CHECK(std::abs(got - ssl::swav()(s).value) > 1e-4f);  // the queue changed the codes
  // checkpoint buffers: the queue, its fill count and write position, the step count
  ssl::methods_detail::buffer_list<> bufs;
  m.collect_buffers(bufs, "");
  std::vector<std::string> names;
  for (auto& b : bufs) names.push_back(b.first);
  for (const char* n : {"queue", "queue_filled", "queue_ptr", "step"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
}

TEST_CASE("swav: a few steps lower the loss on a tiny problem") {
  auto m = make_swav();
  const auto views = multi_crop(16, 2, 61);
  const auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
  CAPTURE(first, last);
  CHECK(last < first - 0.05f);
}

TEST_CASE("swav: bad compositions, options and crops throw, naming what was expected") {
  expect_shape_error_naming(
      [] {
        ssl::swav_method<ssl::vit<>>(ssl::vit<>(tiny_vit(), ssl::rng(2)), tiny_projector(), ssl::swav_prototypes<>(5, 10));
      },
      {"swav", "6", "5"});
  CHECK_THROWS_AS(make_swav({.freeze_prototypes_steps = -1}), ssl::value_error);
  CHECK_THROWS_AS(make_swav({.temperature = 0.0f}), ssl::value_error);
  CHECK_THROWS_AS(ssl::swav_prototypes<>(0, 10), ssl::value_error);
  auto m = make_swav();
  CHECK_THROWS_AS(m.train_step({random_batch(4, 1, 8, 8, 1)}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(4, 1, 8, 8, 1), random_batch(5, 1, 8, 8, 2)}); },
                            {"crop 1", "(5, 1, 8, 8)"});
  auto three = make_swav({.assign_crops = 3, .freeze_prototypes_steps = 0});
  CHECK_THROWS_WITH(three.train_step(two_views(4, 1, 8, 8, 3)), Catch::Contains("3 assigned crops"));
}
