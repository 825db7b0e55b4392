// triplet and triplet_mining: PyTorch fixtures, gradient checks, bad input.
#include <ssl/losses/loss.hpp>
#include <ssl/losses/triplet.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

static_assert(ssl::Loss<ssl::triplet, tensor, tensor, tensor>);
static_assert(ssl::Loss<ssl::triplet_mining, tensor, std::vector<int64_t>>);
static_assert(!ssl::Loss<ssl::triplet, tensor>);

TEST_CASE("triplet matches PyTorch (squared Euclidean and cosine)") {
  for_each_case("triplet.json", [](const fixture_case& c) {
    const auto dist = c.s("cosine") != 0.0f ? ssl::triplet_distance::cosine : ssl::triplet_distance::squared_euclidean;
    const auto r = ssl::triplet(c.s("margin"), dist)(c.t("anchor"), c.t("positive"), c.t("negative"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_anchor, c.t("grad_anchor")) <= 1e-4);
    CHECK(rel_error(r.grad_positive, c.t("grad_positive")) <= 1e-4);
    CHECK(rel_error(r.grad_negative, c.t("grad_negative")) <= 1e-4);
  });
}

TEST_CASE("triplet gradients pass the checker") {
  for (auto dist : {ssl::triplet_distance::squared_euclidean, ssl::triplet_distance::cosine}) {
    const ssl::triplet loss(dist == ssl::triplet_distance::cosine ? 0.5f : 4.0f, dist);
    const tensor a = randn({4, 3}, 41), p = randn({4, 3}, 42), n = randn({4, 3}, 43);
    const auto r = loss(a, p, n);
    CHECK(r.value > 0.0f);
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], in[1], in[2]).value); }, {a, p, n},
                     {r.grad_anchor, r.grad_positive, r.grad_negative}, 1e-3, 1e-3);
  }
  CHECK_THROWS_AS(ssl::triplet(-1.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::triplet()(randn({4, 3}, 1), randn({4, 3}, 2), randn({3, 3}, 3)), ssl::shape_error);
}

TEST_CASE("triplet_mining matches PyTorch for batch-all, batch-hard and semi-hard") {
  for_each_case("triplet_mining.json", [](const fixture_case& c) {
    const auto dist = c.s("cosine") != 0.0f ? ssl::triplet_distance::cosine : ssl::triplet_distance::squared_euclidean;
    const auto strategy = static_cast<ssl::triplet_strategy>(int(c.s("strategy")));
    const auto r = ssl::triplet_mining(strategy, c.s("margin"), dist)(c.t("x"), c.labels("labels"));
    CHECK(r.triplets > 0);
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_x, c.t("grad_x")) <= 1e-4);
  });
}

TEST_CASE("triplet_mining gradients pass the checker") {
  const std::vector<int64_t> labels{0, 1, 0, 2, 1, 2, 0, 1};
  for (auto strategy : {ssl::triplet_strategy::batch_all, ssl::triplet_strategy::batch_hard,
                        ssl::triplet_strategy::semi_hard}) {
    for (auto dist : {ssl::triplet_distance::squared_euclidean, ssl::triplet_distance::cosine}) {
      INFO("strategy " << int(strategy) << ", cosine " << (dist == ssl::triplet_distance::cosine));
      // batch-all averages over the terms > 0, a count that jumps when a term crosses 0: its
      // margin keeps every term positive so that finite differences see a smooth function.
      const bool all = strategy == ssl::triplet_strategy::batch_all;
      const float margin = dist == ssl::triplet_distance::cosine ? (all ? 3.0f : 0.5f) : (all ? 100.0f : 2.0f);
      const ssl::triplet_mining loss(strategy, margin, dist);
      const tensor x = randn({8, 3}, 44);
      const auto r = loss(x, labels);
      CHECK(r.value > 0.0f);
      // selections switch under large steps: small steps where the loss is O(1), large where it is O(100)
      expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], labels).value); }, {x}, {r.grad_x},
                       all ? 1e-2 : 1e-4, 1e-3);
    }
  }
  // one class only: no negatives, no terms
  const auto none = ssl::triplet_mining()(randn({4, 3}, 45), std::vector<int64_t>{1, 1, 1, 1});
  CHECK(none.triplets == 0);
  CHECK(none.value == 0.0f);
  CHECK_THROWS_AS(ssl::triplet_mining()(randn({4, 3}, 1), std::vector<int64_t>{1, 2}), ssl::shape_error);
}
