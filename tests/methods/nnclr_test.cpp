// nnclr_method: whole-step gradients against finite differences (neighbours from a filled support
// set, so the lookup is locally constant), the first step's self-neighbours, the support set as a
// FIFO of the view-1 embeddings and a checkpoint buffer, the loss assembled by hand from its parts,
// learning on a tiny problem, errors.
#include "method_support.hpp"

using namespace method_test;

namespace {
auto make_nnclr(ssl::nnclr_options o = {.support_size = 32, .temperature = 0.2f}) {
  return ssl::nnclr_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64), tiny_head(16, 24, 8),
                                                                      tiny_head(8, 16, 8, 7), o);
}
}  // namespace

static_assert(ssl::Method<ssl::nnclr_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>>);

TEST_CASE("nnclr: train_step gradients match finite differences of its loss (every parameter)") {
  auto m = make_nnclr();
  // fill the support set with earlier embeddings: then every neighbour is a support row, constant
  // under small weight changes (the argmax does not move), and the step is a function of the weights
  for (uint64_t s = 0; s < 4; ++s) {
    m.train_step(two_views(6, 1, 8, 8, 40 + s));
    m.after_step({int64_t(s) + 1, 10, 0});
  }
  REQUIRE(m.support_set().filled() == 24);
  const auto views = two_views(6, 1, 8, 8, 11);
  // eps 3e-4: at 1e-3 one coordinate's step moves a row's argmax to another support row (a jump)
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params, {.eps = 3e-4});
  INFO(res.report());
  CHECK(res.ok());
  CHECK(m.last_step_used_support());
}

TEST_CASE("nnclr: the step's loss is 1/2 [nnclr(NN(z1), p2) + nnclr(NN(z2), p1)] of its parts") {
  auto m = make_nnclr();
  const auto first = two_views(5, 1, 8, 8, 3);
  // the first step: empty support set, each embedding is its own neighbour
  const auto x0 = ssl::concat_batch({&first[0], &first[1]});
  const auto z0 = m.projector().forward(m.encoder().forward(x0).y).y;
  const auto p0 = m.predictor().forward(z0).y;
  auto rows = [](const ssl::tensor<ssl::cpu>& t, int64_t a, int64_t n) { return ssl::methods_detail::rows(t, a, a + n); };
  const ssl::nnclr loss(0.2f);
  const float self = 0.5f * (loss(rows(z0, 0, 5), rows(p0, 5, 5)).value + loss(rows(z0, 5, 5), rows(p0, 0, 5)).value);
  CHECK(m.train_step(first).loss == Approx(self).epsilon(1e-5));
  CHECK_FALSE(m.last_step_used_support());
  m.after_step({1, 10, 0});
  // the support set now holds the first step's z1, normalised
  REQUIRE(m.support_set().filled() == 5);
  const auto z1n = ssl::losses_detail::normalize_rows(rows(z0, 0, 5), 5).z;
  CHECK(max_diff(rows(m.support_set().rows(), 0, 5), z1n) < 1e-6);
  // the second step: neighbours from the set
  const auto second = two_views(5, 1, 8, 8, 4);
  const auto x = ssl::concat_batch({&second[0], &second[1]});
  const auto z = m.projector().forward(m.encoder().forward(x).y).y;
  const auto p = m.predictor().forward(z).y;
  const auto nn1 = m.support_set().nearest(rows(z, 0, 5)), nn2 = m.support_set().nearest(rows(z, 5, 5));
  const float expected = 0.5f * (loss(nn1, rows(p, 5, 5)).value + loss(nn2, rows(p, 0, 5)).value);
  CHECK(m.train_step(second).loss == Approx(expected).epsilon(1e-5));
  CHECK(m.last_step_used_support());
  CHECK(std::abs(expected - self) > 1e-3f);
}

TEST_CASE("nnclr: the support set is a FIFO of view-1 embeddings and a checkpoint buffer") {
  auto m = make_nnclr({.support_size = 8});
  ssl::methods_detail::buffer_list<ssl::cpu> buffers;
  m.collect_buffers(buffers, "m");
  std::vector<std::string> names;
  for (auto& b : buffers) names.push_back(b.first);
  CHECK(std::find(names.begin(), names.end(), "m.support") != names.end());
  CHECK(std::find(names.begin(), names.end(), "m.support_filled") != names.end());
  CHECK(std::find(names.begin(), names.end(), "m.support_ptr") != names.end());
  for (uint64_t s = 0; s < 3; ++s) {  // 3 steps of 3 images: 9 rows into 8, the first one overwritten
    m.train_step(two_views(3, 1, 8, 8, 50 + s));
    m.after_step({int64_t(s) + 1, 10, 0});
  }
  CHECK(m.support_set().filled() == 8);
  CHECK(m.support_set().pointer() == 1);
  // every stored row has unit length
  for (int64_t r = 0; r < 8; ++r) {
    double n = 0;
    for (int64_t k = 0; k < 8; ++k) n += double(m.support_set().rows()[r * 8 + k]) * m.support_set().rows()[r * 8 + k];
    CHECK(n == Approx(1.0).epsilon(1e-5));
  }
  // after_step without a step enqueues nothing
  m.after_step({4, 10, 0});
  CHECK(m.support_set().pointer() == 1);
}

TEST_CASE("nnclr: a few steps lower the loss on a tiny problem") {
  auto m = make_nnclr({.support_size = 16, .temperature = 0.2f});
  const auto views = two_views(8, 1, 8, 8, 9);
  const auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
  CAPTURE(first, last);
  CHECK(last < first - 0.1f);
}

TEST_CASE("nnclr: bad compositions and batches throw, naming what was expected") {
  expect_shape_error_naming(
      [] {
        ssl::nnclr_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64), tiny_head(12, 24, 8), tiny_head(8, 16, 8));
      },
      {"nnclr", "16", "12"});
  expect_shape_error_naming(
      [] {
        ssl::nnclr_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64), tiny_head(16, 24, 8), tiny_head(8, 16, 6));
      },
      {"nnclr", "predictor", "6"});
  CHECK_THROWS_AS(make_nnclr({.support_size = 0}), ssl::value_error);
  CHECK_THROWS_AS(make_nnclr({.support_size = 8, .temperature = 0.0f}), ssl::value_error);
  auto m = make_nnclr();
  CHECK_THROWS_AS(m.train_step({random_batch(4, 1, 8, 8, 1)}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(4, 1, 8, 8, 1), random_batch(5, 1, 8, 8, 2)}); }, {"(5, 1, 8, 8)"});
}
