// SwAV's swapped-prediction loss: value, gradient and codes against the official code's formula
// (PyTorch float64, scripts/fixtures/losses.py), with and without a queue; finite differences;
// the codes' balance; bad input.
#include <ssl/losses/swav.hpp>

#include <limits>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

static_assert(ssl::Loss<ssl::swav, tensor>);

TEST_CASE("swav matches the official SwAV loss (value, gradient, codes), with and without a queue") {
  int with_queue = 0;
  for_each_case("swav.json", [&](const fixture_case& c) {
    const ssl::swav loss(c.s("temperature"), c.s("epsilon"), int(c.s("iterations")), int(c.s("assign_crops")));
    const tensor scores = c.t("scores");
    const ssl::swav_result r = c.has("queue_scores") ? loss(scores, c.t("queue_scores")) : loss(scores);
    with_queue += c.has("queue_scores") ? 1 : 0;
    CHECK(rel(r.value, c.s("value")) <= 1e-5);
    CHECK(rel_error(r.grad_scores, c.t("grad_scores")) <= 1e-4);
    CHECK(rel_error(r.codes, c.t("codes")) <= 1e-5);
  });
  CHECK(with_queue == 1);
}

TEST_CASE("swav: gradients match finite differences; the codes do not take a gradient") {
  const ssl::swav loss(0.2f, 0.1f, 3, 2);
  const tensor scores = randn({4, 5, 7}, 11, 0.5f);
  const ssl::swav_result r = loss(scores);
  // the codes are held fixed (stop-gradient): the finite differences use the same codes
  expect_gradients([&](std::vector<tensor>& in) { return double(loss.with_codes(in[0], r.codes).value); }, {scores},
                   {r.grad_scores}, 1e-2, 1e-4);
  // with_codes(scores, codes(scores)) is the loss itself
  CHECK(loss.with_codes(scores, loss.codes(scores)).value == r.value);
}

TEST_CASE("swav: codes are distributions that spread a collapsed batch over the prototypes") {
  // every image prefers prototype 0: the codes still give every prototype B / K of the mass
  const int64_t V = 2, B = 32, K = 4;
  tensor scores = randn({V, B, K}, 12, 0.05f);
  for (int64_t i = 0; i < V * B; ++i) scores[i * K] += 0.5f;
  const ssl::swav loss(0.1f, 0.05f, 10);
  const tensor q = loss.codes(scores);
  REQUIRE(q.shape() == ssl::shape{2, B, K});
  for (int64_t a = 0; a < 2; ++a) {
    for (int64_t b = 0; b < B; ++b) {
      double row = 0;
      for (int64_t k = 0; k < K; ++k) row += q[(a * B + b) * K + k];
      CHECK(row == Approx(1.0).epsilon(1e-5));
    }
    for (int64_t k = 0; k < K; ++k) {
      double col = 0;
      for (int64_t b = 0; b < B; ++b) col += q[(a * B + b) * K + k];
      CHECK(col == Approx(double(B) / double(K)).epsilon(0.02));
    }
  }
  // a queue of rows that all prefer prototype 1 changes the batch's codes: the balance is over queue + batch
  tensor queue = randn({2, 16, K}, 13, 0.05f);
  for (int64_t i = 0; i < 2 * 16; ++i) queue[i * K + 1] += 0.5f;
  const tensor qq = loss.codes(scores, &queue);
  double to_one = 0, to_one_alone = 0;
  for (int64_t b = 0; b < B; ++b) {
    to_one += qq[b * K + 1];
    to_one_alone += q[b * K + 1];
  }
  CHECK(to_one < to_one_alone);
}

TEST_CASE("swav: bad hyper-parameters and inputs throw typed errors naming what was expected") {
  CHECK_THROWS_AS(ssl::swav(0.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::swav(0.1f, -1.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::swav(0.1f, 0.05f, 0), ssl::value_error);
  CHECK_THROWS_AS(ssl::swav(0.1f, 0.05f, 3, 0), ssl::value_error);
  const ssl::swav loss;
  CHECK_THROWS_AS(loss(tensor({4, 8}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(loss(tensor({1, 4, 8}, 0.0f)), Catch::Contains("at least 2 crops") && Catch::Contains("(1, 4, 8)"));
  CHECK_THROWS_AS(ssl::swav(0.1f, 0.05f, 3, 3)(tensor({2, 4, 8}, 0.0f)), ssl::shape_error);
  const tensor s({3, 4, 8}, 0.0f);
  CHECK_THROWS_WITH(loss(s, tensor({2, 5, 7}, 0.0f)), Catch::Contains("queue") && Catch::Contains("(2, Q, 8)"));
  CHECK_THROWS_AS(loss.with_codes(s, tensor({2, 4, 7}, 0.0f)), ssl::shape_error);
  // NaN scores give a NaN loss (a method reports it), never a silently finite one
  tensor bad = randn({2, 4, 8}, 14);
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(loss(bad).value));
}
