// msn_loss (MSN, Assran et al. 2022): value, parts, targets and both gradients against PyTorch
// fixtures written from the official code's loss (scripts/fixtures/losses.py, msn_cases); finite
// differences of the whole loss and of with_targets; cosine invariances, thread-count
// independence; ME-MAX and the targets' properties; bad options and shapes.
#include <ssl/core/parallel.hpp>
#include <ssl/losses/loss.hpp>
#include <ssl/losses/msn.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "data/error_message.hpp"  // ssl_test::message_of
#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

static_assert(ssl::Loss<ssl::msn_loss, tensor, tensor, tensor>);
static_assert(!ssl::Loss<ssl::msn_loss, tensor, tensor>);

namespace {
/// The cosine scores a^ P^^T (R, K), computed as the loss computes them.
tensor cosines(const tensor& a, const tensor& p) {
  tensor an, pn;
  return ssl::ops::linear_forward(ssl::ops::l2_normalize_rows(a, an), ssl::ops::l2_normalize_rows(p, pn), nullptr);
}
/// Rows of independent softmax distributions (rows sum to 1 up to float rounding).
tensor random_distributions(int64_t n, int64_t k, uint64_t seed) {
  tensor q = randn({n, k}, seed, 1.5f);
  for (int64_t r = 0; r < n; ++r) {
    double z = 0;
    for (int64_t j = 0; j < k; ++j) z += std::exp(double(q[r * k + j]));
    for (int64_t j = 0; j < k; ++j) q[r * k + j] = float(std::exp(double(q[r * k + j])) / z);
  }
  return q;
}
}  // namespace

TEST_CASE("msn loss matches the official MSN loss (value, parts, targets, gradients of anchors and prototypes)",
          "[msn]") {
  int cases = 0, no_sinkhorn = 0, entropy = 0, one_view = 0, one_iteration = 0;
  for_each_case("msn.json", [&](const fixture_case& c) {
    ++cases;
    const ssl::msn_loss loss({.temperature = c.s("temperature"),
                              .sharpen_temperature = c.s("sharpen_temperature"),
                              .me_max_weight = c.s("me_max_weight"),
                              .entropy_weight = c.s("entropy_weight"),
                              .sinkhorn = c.s("sinkhorn") != 0.0f,
                              .sinkhorn_iterations = int(c.s("sinkhorn_iterations"))});
    no_sinkhorn += c.s("sinkhorn") == 0.0f;
    entropy += c.s("entropy_weight") > 0.0f;
    one_view += c.s("views") == 1.0f;
    one_iteration += c.s("sinkhorn") != 0.0f && c.s("sinkhorn_iterations") == 1.0f;
    const tensor anchors = c.t("anchors"), target = c.t("target"), prototypes = c.t("prototypes");
    REQUIRE(anchors.dim(0) == int64_t(c.s("views")) * target.dim(0));
    const auto r = loss(anchors, target, prototypes);
    CHECK(rel(r.value, c.s("value")) <= 1e-5);
    const tensor parts = c.t("parts");
    REQUIRE(r.parts.shape() == ssl::shape{3});
    for (int64_t i = 0; i < 3; ++i) {
      INFO("part " << i);
      CHECK(std::abs(double(r.parts[i]) - parts[i]) <= 1e-5 * std::max(1.0, std::abs(double(parts[i]))));
    }
    CHECK(rel_error(r.targets, c.t("targets")) <= 1e-4);
    CHECK(rel_error(loss.targets(target, prototypes), c.t("targets")) <= 1e-4);
    CHECK(rel_error(r.grad_anchors, c.t("grad_anchors")) <= 1e-4);
    CHECK(rel_error(r.grad_prototypes, c.t("grad_prototypes")) <= 1e-4);
  });
  CHECK(cases == 6);
  CHECK(no_sinkhorn == 1);
  CHECK(entropy == 1);
  CHECK(one_view == 1);
  CHECK(one_iteration == 1);
}

TEST_CASE("msn loss gradients pass finite differences (targets held fixed); the target is data", "[msn]") {
  const int64_t N = 4, V = 2, d = 6, K = 9;
  const tensor anchors = randn({V * N, d}, 61, 1.5f), target = randn({N, d}, 62, 1.5f),
               prototypes = randn({K, d}, 63, 1.5f);
  const std::vector<ssl::msn_loss_options> settings = {
      {},                                                                   // defaults
      {.me_max_weight = 1.0f, .entropy_weight = 0.5f, .sinkhorn = false},  // entropy on, no Sinkhorn
  };
  for (const auto& o : settings) {
    INFO("entropy weight " << o.entropy_weight << ", sinkhorn " << o.sinkhorn);
    const ssl::msn_loss loss(o);
    const auto r = loss(anchors, target, prototypes);
    REQUIRE(r.grad_anchors.shape() == anchors.shape());
    REQUIRE(r.grad_prototypes.shape() == prototypes.shape());
    // anchors do not enter the targets: the whole loss is the function to differentiate
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], target, prototypes).value); },
                     {anchors}, {r.grad_anchors}, 1e-2, 1e-4);
    // the prototypes enter the targets too, under no_grad (MSN): differentiate with the targets fixed
    const tensor q = loss.targets(target, prototypes);
    CHECK(rel_error(q, r.targets, 1e-30) == 0.0);
    CHECK(loss.with_targets(cosines(anchors, prototypes), q).value == r.value);
    expect_gradients(
        [&](std::vector<tensor>& in) { return double(loss.with_targets(cosines(in[0], in[1]), q).value); },
        {anchors, prototypes}, {r.grad_anchors, r.grad_prototypes}, 1e-2, 1e-4);
    // ... and that is a real choice: the whole loss (targets recomputed) moves differently with P
    double largest = 0;
    for (int64_t i = 0; i < prototypes.numel(); ++i) {
      tensor plus = prototypes, minus = prototypes;
      plus[i] += 1e-2f;
      minus[i] -= 1e-2f;
      const double fd = (double(loss(anchors, target, plus).value) - loss(anchors, target, minus).value) / 2e-2;
      largest = std::max(largest, std::abs(fd - r.grad_prototypes[i]));
    }
    CHECK(largest > 0.05);
    // the target gets no gradient, yet it is an input of the value: moving it moves the value and the targets
    tensor moved = target;
    for (int64_t i = 0; i < d; ++i) moved[i] = -target[i] + 0.3f * float(i);
    const auto m = loss(anchors, moved, prototypes);
    CHECK(std::abs(double(m.value) - r.value) > 1e-3);
    CHECK(rel_error(m.targets, r.targets) > 1e-2);
  }
}

TEST_CASE("msn with_targets: its score gradient passes finite differences and matches the whole loss", "[msn]") {
  const int64_t N = 3, V = 2, K = 8;
  const tensor scores = randn({V * N, K}, 64, 0.4f);  // cosine-like scores
  const tensor q = random_distributions(N, K, 65);
  for (const ssl::msn_loss_options& o : {ssl::msn_loss_options{},
                                         ssl::msn_loss_options{.temperature = 0.2f, .me_max_weight = 0.5f,
                                                               .entropy_weight = 0.7f}}) {
    INFO("tau " << o.temperature << ", entropy weight " << o.entropy_weight);
    const ssl::msn_loss loss(o);
    const auto r = loss.with_targets(scores, q);
    REQUIRE(r.grad_scores.shape() == scores.shape());
    expect_gradients([&](std::vector<tensor>& in) { return double(loss.with_targets(in[0], q).value); }, {scores},
                     {r.grad_scores}, 1e-3, 1e-4);
    // the value is the weighted sum of its parts
    CHECK(double(r.value) == Approx(double(r.parts[0]) + o.me_max_weight * double(r.parts[1]) +
                                    o.entropy_weight * double(r.parts[2]))
                                 .epsilon(1e-6));
    // the targets of image n are used by every view v (row v N + n): a permuted q changes the value
    tensor swapped = q;
    for (int64_t k = 0; k < K; ++k) std::swap(swapped[k], swapped[K + k]);
    CHECK(std::abs(double(loss.with_targets(scores, swapped).value) - r.value) > 1e-3);
  }
  // the cross-entropy part is sum_k -q log softmax(s / tau), averaged over rows (written out here)
  const ssl::msn_loss loss;
  double ce = 0;
  for (int64_t r = 0; r < V * N; ++r) {
    double m = -INFINITY, z = 0;
    for (int64_t k = 0; k < K; ++k) m = std::max(m, 10.0 * scores[r * K + k]);
    for (int64_t k = 0; k < K; ++k) z += std::exp(10.0 * scores[r * K + k] - m);
    for (int64_t k = 0; k < K; ++k) ce -= q[(r % N) * K + k] * (10.0 * scores[r * K + k] - m - std::log(z));
  }
  CHECK(double(loss.with_targets(scores, q).parts[0]) == Approx(ce / double(V * N)).epsilon(1e-6));
}

TEST_CASE("msn loss is invariant to the scale of the rows (cosines) and does not depend on the thread count",
          "[msn]") {
  const int64_t N = 5, V = 3, d = 7, K = 10;
  const tensor anchors = randn({V * N, d}, 66), target = randn({N, d}, 67), prototypes = randn({K, d}, 68);
  const ssl::msn_loss loss({.entropy_weight = 0.3f});
  const auto r = loss(anchors, target, prototypes);
  tensor a2 = anchors, t2 = target, p2 = prototypes;
  for (int64_t i = 0; i < d; ++i) {
    a2[4 * d + i] *= 3.7f;   // one anchor row
    p2[2 * d + i] *= 0.25f;  // one prototype row
    t2[1 * d + i] *= 11.0f;  // one target row
  }
  CHECK(loss(a2, target, prototypes).value == Approx(r.value).epsilon(1e-5));
  CHECK(loss(anchors, target, p2).value == Approx(r.value).epsilon(1e-5));
  CHECK(loss(anchors, t2, prototypes).value == Approx(r.value).epsilon(1e-5));
  CHECK(loss(a2, t2, p2).value == Approx(r.value).epsilon(1e-5));
  // ... but not to a non-uniform change of a row
  tensor a3 = anchors;
  a3[4 * d] += 2.0f;
  CHECK(std::abs(double(loss(a3, target, prototypes).value) - r.value) > 1e-4);

  // thread counts: big enough for several row chunks and more than one 64-column chunk
  const int saved = ssl::num_threads();
  const tensor A = randn({3 * 50, 16}, 69), T = randn({50, 16}, 70), P = randn({130, 16}, 71);
  for (const ssl::msn_loss_options& o :
       {ssl::msn_loss_options{}, ssl::msn_loss_options{.entropy_weight = 0.5f, .sinkhorn = false}}) {
    const ssl::msn_loss l(o);
    ssl::set_num_threads(1);
    const auto one = l(A, T, P);
    ssl::set_num_threads(2);
    const auto two = l(A, T, P);
    CHECK(two.value == one.value);
    CHECK(rel_error(two.parts, one.parts, 1e-30) == 0.0);
    CHECK(rel_error(two.targets, one.targets, 1e-30) == 0.0);
    CHECK(rel_error(two.grad_anchors, one.grad_anchors, 1e-30) == 0.0);
    CHECK(rel_error(two.grad_prototypes, one.grad_prototypes, 1e-30) == 0.0);
  }
  ssl::set_num_threads(saved);
}

TEST_CASE("msn ME-MAX is non-negative and vanishes for evenly spread anchors; targets are distributions", "[msn]") {
  const ssl::msn_loss loss;
  for (uint64_t seed = 80; seed < 85; ++seed) {
    const auto r = loss(randn({8, 6}, seed), randn({4, 6}, seed + 100), randn({9, 6}, seed + 200));
    CHECK(r.parts[1] >= 0.0f);
    CHECK(r.parts[2] >= 0.0f);
    CHECK(r.parts[0] > 0.0f);
  }
  // K = d = 6 prototypes on the axes, 6 anchors (N = 3, V = 2) one on each axis: the anchors'
  // probabilities are permutations of one vector, so their mean is uniform and ME-MAX is 0
  const int64_t K = 6;
  tensor eye({K, K}, 0.0f);
  for (int64_t k = 0; k < K; ++k) eye[k * K + k] = 2.0f;
  const tensor target = randn({3, K}, 90);
  const auto even = loss(eye, target, eye);
  CHECK(std::abs(even.parts[1]) <= 1e-6);
  // the gradient of ME-MAX vanishes there too: with weight 0 the gradient is the same
  const auto no_me = ssl::msn_loss({.me_max_weight = 0.0f})(eye, target, eye);
  CHECK(rel_error(even.grad_anchors, no_me.grad_anchors) <= 1e-5);
  CHECK(rel_error(even.grad_prototypes, no_me.grad_prototypes) <= 1e-5);
  // every anchor on one axis: collapsed, ME-MAX is close to log K - H(p) > 0 and the value grows by it
  tensor collapsed({K, K}, 0.0f);
  for (int64_t r = 0; r < K; ++r) collapsed[r * K] = 1.0f;
  const auto col = loss(collapsed, target, eye);
  CHECK(col.parts[1] > 0.5f);
  CHECK(double(col.value) == Approx(double(col.parts[0]) + double(col.parts[1])).epsilon(1e-6));

  // the targets' rows sum to 1 with and without Sinkhorn; Sinkhorn spreads a collapsed batch
  tensor bunched = randn({16, 5}, 91, 0.1f);
  for (int64_t n = 0; n < 16; ++n) bunched[n * 5] += 1.0f;  // every image near prototype 0's direction
  const tensor protos = randn({8, 5}, 92);
  std::vector<double> top(2), bottom(2);  // the largest and smallest prototype's share of the mass
  for (bool sk : {false, true}) {
    INFO("sinkhorn " << sk);
    const ssl::msn_loss l({.sinkhorn = sk});
    const tensor q = l.targets(bunched, protos);
    REQUIRE(q.shape() == ssl::shape{16, 8});
    std::vector<double> col_sum(8, 0.0);
    for (int64_t n = 0; n < 16; ++n) {
      double row = 0;
      for (int64_t k = 0; k < 8; ++k) {
        CHECK(q[n * 8 + k] >= 0.0f);
        row += q[n * 8 + k];
        col_sum[size_t(k)] += q[n * 8 + k];
      }
      CHECK(row == Approx(1.0).epsilon(1e-5));
    }
    top[sk] = *std::max_element(col_sum.begin(), col_sum.end()) / 16.0;
    bottom[sk] = *std::min_element(col_sum.begin(), col_sum.end()) / 16.0;
  }
  // without Sinkhorn a few prototypes take the batch (an even share is 1/8), with it all are used
  CHECK(top[0] > 3.0 / 8.0);
  CHECK(bottom[0] < 0.01);
  CHECK(top[1] < 1.5 / 8.0);
  CHECK(bottom[1] > 0.5 / 8.0);
}

TEST_CASE("msn loss rejects bad options and shapes with typed errors naming what was expected", "[msn]") {
  using ssl::shape_error;
  using ssl::value_error;
  // options
  REQUIRE_THROWS_AS(ssl::msn_loss({.temperature = 0.0f}), value_error);
  CHECK(ssl_test::message_of<value_error>([] { ssl::msn_loss({.temperature = -0.1f}); }).find("msn temperature") !=
        std::string::npos);
  REQUIRE_THROWS_AS(ssl::msn_loss({.sharpen_temperature = 0.0f}), value_error);
  CHECK_THROWS_WITH(ssl::msn_loss({.sharpen_temperature = -1.0f}),
                    Catch::Contains("msn sharpen temperature") && Catch::Contains("expected a finite value > 0"));
  REQUIRE_THROWS_AS(ssl::msn_loss({.me_max_weight = -1.0f}), value_error);
  CHECK_THROWS_WITH(ssl::msn_loss({.me_max_weight = -1.0f}), Catch::Contains("non-negative ME-MAX"));
  CHECK_THROWS_WITH(ssl::msn_loss({.me_max_weight = std::numeric_limits<float>::infinity()}),
                    Catch::Contains("finite non-negative ME-MAX"));
  CHECK_THROWS_AS(ssl::msn_loss({.entropy_weight = std::numeric_limits<float>::quiet_NaN()}), value_error);
  REQUIRE_THROWS_AS(ssl::msn_loss({.entropy_weight = -0.5f}), value_error);
  CHECK_THROWS_WITH(ssl::msn_loss({.entropy_weight = -0.5f}), Catch::Contains("entropy weights") &&
                                                                   Catch::Contains("-0.5"));
  REQUIRE_THROWS_AS(ssl::msn_loss({.sinkhorn_iterations = 0}), value_error);
  CHECK_THROWS_WITH(ssl::msn_loss({.sinkhorn_iterations = 0}),
                    Catch::Contains("at least 1 Sinkhorn-Knopp iteration") && Catch::Contains("got 0"));
  CHECK_NOTHROW(ssl::msn_loss({.sinkhorn = false, .sinkhorn_iterations = 0}));  // unused without Sinkhorn
  CHECK_NOTHROW(ssl::msn_loss({.me_max_weight = 0.0f, .entropy_weight = 0.0f}));

  // shapes: anchors (V N, d), target (N, d), prototypes (K, d)
  const ssl::msn_loss loss;
  const tensor a = randn({6, 5}, 1), t = randn({3, 5}, 2), p = randn({7, 5}, 3);
  CHECK_NOTHROW(loss(a, t, p));
  REQUIRE_THROWS_AS(loss(randn({6, 4}, 1), t, p), shape_error);  // anchors' d
  CHECK_THROWS_WITH(loss(randn({6, 4}, 1), t, p), Catch::Contains("msn anchors: expected (V N, 5)") &&
                                                      Catch::Contains("(6, 4)"));
  REQUIRE_THROWS_AS(loss(a, randn({3, 6}, 2), p), shape_error);  // target's d
  CHECK_THROWS_WITH(loss(a, randn({3, 6}, 2), p), Catch::Contains("msn target: expected (N, 5)") &&
                                                      Catch::Contains("(3, 6)"));
  REQUIRE_THROWS_AS(loss(randn({7, 5}, 1), t, p), shape_error);  // 7 rows: not V x 3
  CHECK_THROWS_WITH(loss(randn({7, 5}, 1), t, p), Catch::Contains("N = 3") && Catch::Contains("(7, 5)"));
  REQUIRE_THROWS_AS(loss(randn({2, 5}, 1), t, p), shape_error);  // fewer anchors than images
  // empty inputs
  REQUIRE_THROWS_AS(loss(tensor({0, 5}), t, p), shape_error);
  CHECK_THROWS_WITH(loss(tensor({0, 5}), t, p), Catch::Contains("msn anchors") && Catch::Contains("(0, 5)"));
  REQUIRE_THROWS_AS(loss(a, tensor({0, 5}), p), shape_error);
  CHECK_THROWS_WITH(loss(a, tensor({0, 5}), p), Catch::Contains("msn target") && Catch::Contains("(0, 5)"));
  REQUIRE_THROWS_AS(loss(a, t, tensor({0, 5})), shape_error);
  CHECK_THROWS_WITH(loss(a, t, tensor({0, 5})), Catch::Contains("msn prototypes: expected (K, d) with K, d > 0"));
  REQUIRE_THROWS_AS(loss(tensor({6, 0}), tensor({3, 0}), tensor({7, 0})), shape_error);
  REQUIRE_THROWS_AS(loss(randn({30}, 1), t, p), shape_error);  // not a matrix
  REQUIRE_THROWS_AS(loss.targets(randn({3, 4}, 2), p), shape_error);
  CHECK_THROWS_WITH(loss.targets(randn({3, 4}, 2), p), Catch::Contains("msn target: expected (N, 5)"));
  // with_targets: scores (V N, K), targets (N, K)
  const tensor s = randn({6, 7}, 4), q = random_distributions(3, 7, 5);
  CHECK_NOTHROW(loss.with_targets(s, q));
  REQUIRE_THROWS_AS(loss.with_targets(randn({6, 8}, 4), q), shape_error);
  CHECK_THROWS_WITH(loss.with_targets(randn({6, 8}, 4), q),
                    Catch::Contains("msn anchor scores: expected (V N, 7)") && Catch::Contains("(6, 8)"));
  REQUIRE_THROWS_AS(loss.with_targets(randn({5, 7}, 4), q), shape_error);
  CHECK_THROWS_WITH(loss.with_targets(randn({5, 7}, 4), q), Catch::Contains("N = 3"));
  REQUIRE_THROWS_AS(loss.with_targets(s, tensor({0, 7})), shape_error);
  CHECK_THROWS_WITH(loss.with_targets(s, tensor({0, 7})), Catch::Contains("msn targets: expected (N, K)"));
}
