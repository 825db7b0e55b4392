// smooth_l1 (I-JEPA's loss): PyTorch fixtures (both branches, beta 0.5 / 1 / 2, layer-normed
// targets), gradient checks away from the kink, the kink itself, thread-count independence, bad input.
#include <ssl/backend/cpu/layer_norm.hpp>
#include <ssl/core/parallel.hpp>
#include <ssl/losses/loss.hpp>
#include <ssl/losses/smooth_l1.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

static_assert(ssl::Loss<ssl::smooth_l1, tensor, tensor>);
static_assert(!ssl::Loss<ssl::smooth_l1, tensor> && !ssl::Loss<ssl::smooth_l1, tensor, int>);

namespace {
// Elements of pred - target with |d| < beta (the quadratic branch) and with |d| >= beta (the linear one).
std::pair<int64_t, int64_t> branch_counts(const tensor& pred, const tensor& target, float beta) {
  int64_t quad = 0, lin = 0;
  for (int64_t i = 0; i < pred.numel(); ++i) (std::abs(double(pred[i]) - target[i]) < beta ? quad : lin)++;
  return {quad, lin};
}

// target + d with |d| in [0.05, 0.8] beta (quadratic) or [1.2, 3.2] beta (linear), alternating,
// random signs: every element at least 0.2 beta from the kink |d| = beta.
tensor off_kink(const tensor& target, float beta, uint64_t seed) {
  ssl::rng g(seed);
  tensor pred(target.shape());
  for (int64_t i = 0; i < pred.numel(); ++i) {
    const float u = g.uniform(0.0f, 1.0f), sign = g.uniform(0.0f, 1.0f) < 0.5f ? -1.0f : 1.0f;
    const float m = i % 2 ? 0.05f + 0.75f * u : 1.2f + 2.0f * u;
    pred[i] = target[i] + sign * m * beta;
  }
  return pred;
}
}  // namespace

TEST_CASE("smooth_l1 matches PyTorch (beta 0.5, 1, 2; I-JEPA's layer-normed targets)", "[smooth_l1]") {
  int layer_norm_cases = 0;
  for_each_case("smooth_l1.json", [&](const fixture_case& c) {
    const float beta = c.s("beta");
    const tensor pred = c.t("pred"), target = c.t("target");
    const auto [quad, lin] = branch_counts(pred, target, beta);
    CHECK((quad > 0 && lin > 0));  // both branches of f occur in every case
    const auto r = ssl::smooth_l1(beta)(pred, target);
    CHECK(rel(r.value, c.s("value")) <= 1e-5);
    CHECK(rel_error(r.grad_pred, c.t("grad_pred")) <= 1e-5);
    if (c.has("h")) {  // I-JEPA: target = layer_norm(h) over the feature dim, no affine, eps 1e-5
      ++layer_norm_cases;
      const tensor h = c.t("h");
      const int64_t D = h.dim(-1);
      const tensor ln = ssl::ops::layer_norm_forward(h, tensor({D}, 1.0f), tensor({D}, 0.0f), 1e-5f);
      CHECK(rel_error(ln, target) <= 1e-5);
      const auto q = ssl::smooth_l1()(pred, ln);
      CHECK(rel(q.value, c.s("value")) <= 1e-5);
      CHECK(rel_error(q.grad_pred, c.t("grad_pred")) <= 1e-4);
    }
  });
  CHECK(layer_norm_cases == 2);
}

TEST_CASE("smooth_l1 gradient passes the finite-difference checker away from the kink", "[smooth_l1]") {
  for (float beta : {0.5f, 1.0f, 2.0f}) {
    INFO("beta " << beta);
    const ssl::smooth_l1 loss(beta);
    const tensor target = randn({3, 4, 5}, 41);
    const tensor pred = off_kink(target, beta, 42);
    const auto [quad, lin] = branch_counts(pred, target, beta);
    REQUIRE((quad == 30 && lin == 30));
    const auto r = loss(pred, target);
    // a step of 1e-2 keeps every element on its side of the kink; f is then exactly quadratic or
    // linear around it, so the central difference is exact up to float rounding of the value
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], target).value); }, {pred},
                     {r.grad_pred}, 1e-2, 2e-5);
    // the gradient is clamp(d / beta, -1, 1) / n: at most 1 / n in magnitude, exactly on the linear side
    for (int64_t i = 0; i < pred.numel(); ++i) {
      const double d = double(pred[i]) - target[i];
      if (std::abs(d) >= beta) CHECK(std::abs(r.grad_pred[i]) == Approx(1.0 / 60).epsilon(1e-6));
      else CHECK(r.grad_pred[i] == Approx(d / beta / 60).epsilon(1e-5));
    }
  }
}

TEST_CASE("smooth_l1 at the kink |d| = beta, at d = 0, and for tiny and huge beta", "[smooth_l1]") {
  const tensor target = tensor::from({4}, {0.0f, 1.0f, -2.0f, 0.5f});
  // |d| = beta exactly (0.5 is exact in float): both branches agree, f = beta / 2, f' = +-1
  const float beta = 0.5f;
  const tensor pred = tensor::from({4}, {0.5f, 0.5f, -1.5f, 0.0f});  // d = 0.5, -0.5, 0.5, -0.5
  const auto r = ssl::smooth_l1(beta)(pred, target);
  CHECK(r.value == Approx(0.25f).epsilon(1e-7));
  CHECK(rel_error(r.grad_pred, tensor::from({4}, {0.25f, -0.25f, 0.25f, -0.25f})) <= 1e-7);
  // just inside and just outside the kink: f and f' continuous
  const float lo = ssl::smooth_l1(1.0f)(tensor({1}, 1.0f - 1e-4f), tensor({1}, 0.0f)).value;
  const float hi = ssl::smooth_l1(1.0f)(tensor({1}, 1.0f + 1e-4f), tensor({1}, 0.0f)).value;
  CHECK(lo == Approx(0.5f).margin(2e-4));
  CHECK(hi == Approx(0.5f).margin(2e-4));
  CHECK(lo < hi);
  // pred == target: zero loss, zero gradient
  const auto z = ssl::smooth_l1()(target, target);
  CHECK(z.value == 0.0f);
  for (int64_t i = 0; i < 4; ++i) CHECK(z.grad_pred[i] == 0.0f);
  // tiny beta: mean |d| (L1), gradient sign(d) / n; huge beta: 0.5 mean d^2 / beta
  const tensor p2 = tensor::from({4}, {1.0f, -1.0f, 2.0f, 3.0f});  // d = 1, -2, 4, 2.5
  const auto l1 = ssl::smooth_l1(1e-6f)(p2, target);
  CHECK(l1.value == Approx(9.5 / 4).epsilon(1e-5));
  CHECK(rel_error(l1.grad_pred, tensor::from({4}, {0.25f, -0.25f, 0.25f, 0.25f})) <= 1e-7);
  const auto l2 = ssl::smooth_l1(1e6f)(p2, target);
  CHECK(l2.value == Approx(0.5 * (1 + 4 + 16 + 6.25) / 4 / 1e6).epsilon(1e-5));
  CHECK(rel_error(l2.grad_pred, tensor::from({4}, {1e-6f / 4, -2e-6f / 4, 4e-6f / 4, 2.5e-6f / 4})) <= 1e-5);
}

TEST_CASE("smooth_l1 value and gradient do not depend on the thread count", "[smooth_l1]") {
  const int saved = ssl::num_threads();
  // several chunks of the ordered sum, the last one partial
  const tensor pred = randn({3 * 4096 + 123}, 43, 1.5f), target = randn({3 * 4096 + 123}, 44);
  const ssl::smooth_l1 loss(0.7f);
  ssl::set_num_threads(1);
  const auto one = loss(pred, target);
  for (int t : {2, 3}) {
    ssl::set_num_threads(t);
    const auto many = loss(pred, target);
    CHECK(many.value == one.value);
    CHECK(rel_error(many.grad_pred, one.grad_pred, 1e-30) == 0.0);
  }
  ssl::set_num_threads(saved);
  // the same value as a plain double sum in index order (up to the final float rounding)
  double s = 0;
  for (int64_t i = 0; i < pred.numel(); ++i) {
    const double d = double(pred[i]) - target[i], a = std::abs(d);
    s += a < 0.7 ? 0.5 * d * d / 0.7 : a - 0.35;
  }
  CHECK(one.value == Approx(s / double(pred.numel())).epsilon(1e-6));
}

TEST_CASE("smooth_l1 rejects bad shapes and beta with messages naming expected and found", "[smooth_l1]") {
  const ssl::smooth_l1 loss;
  CHECK_THROWS_AS(loss(tensor({2, 3}, 1.0f), tensor({3, 2}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(loss(tensor({2, 3}, 1.0f), tensor({3, 2}, 1.0f)),
                    Catch::Contains("smooth_l1 target") && Catch::Contains("expected shape (2, 3)") &&
                        Catch::Contains("got (3, 2)"));
  CHECK_THROWS_WITH(loss(tensor({2, 3}, 1.0f), tensor({6}, 1.0f)), Catch::Contains("(2, 3)") && Catch::Contains("(6)"));
  const tensor empty(ssl::shape{0, 4});
  CHECK_THROWS_AS(loss(empty, empty), ssl::shape_error);
  CHECK_THROWS_WITH(loss(empty, empty), Catch::Contains("smooth_l1 pred") && Catch::Contains("non-empty") &&
                                            Catch::Contains("(0, 4)"));
  for (float beta : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    INFO("beta " << beta);
    CHECK_THROWS_AS(ssl::smooth_l1(beta), ssl::value_error);
    CHECK_THROWS_WITH(ssl::smooth_l1(beta), Catch::Contains("smooth_l1 beta") && Catch::Contains("> 0"));
  }
  CHECK(ssl::smooth_l1(0.25f).beta() == 0.25f);
  CHECK(ssl::smooth_l1().beta() == 1.0f);
}
