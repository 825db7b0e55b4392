// soft_cross_entropy: PyTorch fixtures (one-hot, mixup-style two-class, dense and unnormalised
// targets, with and without smoothing), agreement with cross_entropy, gradient check, bad input.
#include <ssl/losses/loss.hpp>
#include <ssl/losses/soft_cross_entropy.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

static_assert(ssl::Loss<ssl::soft_cross_entropy, tensor, tensor>);
static_assert(!ssl::Loss<ssl::soft_cross_entropy, tensor>);

TEST_CASE("soft_cross_entropy matches PyTorch F.cross_entropy with probability targets") {
  for_each_case("soft_cross_entropy.json", [](const fixture_case& c) {
    const tensor logits = c.t("logits"), targets = c.t("targets");
    const ssl::soft_cross_entropy loss(c.s("smoothing"));
    const auto r = loss(logits, targets);
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_logits, c.t("grad_logits")) <= 1e-4);
    if (c.s("one_hot") != 0.0f) {  // one-hot targets: the hard-label loss on their labels
      const int64_t N = logits.dim(0), C = logits.dim(1);
      std::vector<int64_t> labels(static_cast<size_t>(N));
      for (int64_t i = 0; i < N; ++i)
        for (int64_t k = 0; k < C; ++k)
          if (targets.at(i, k) == 1.0f) labels[size_t(i)] = k;
      const auto hard = ssl::cross_entropy(c.s("smoothing"))(logits, labels);
      CHECK(rel(r.value, hard.value) <= 1e-5);
      CHECK(rel_error(r.grad_logits, hard.grad_logits) <= 1e-5);
    }
  });
}

TEST_CASE("soft_cross_entropy passes the gradient checker and is stable for large logits") {
  const tensor logits = randn({6, 5}, 41);
  tensor targets = randn({6, 5}, 42);
  for (int64_t k = 0; k < targets.numel(); ++k) targets[k] = std::abs(targets[k]);  // rows sum to anything
  for (float eps : {0.0f, 0.25f}) {
    const ssl::soft_cross_entropy loss(eps);
    CHECK(loss.label_smoothing() == eps);
    const auto r = loss(logits, targets);
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], targets).value); }, {logits},
                     {r.grad_logits});
  }
  // logits of magnitude 1e4: log-sum-exp keeps value and gradient finite; targets of a single
  // class at the arg-max logit cost nothing
  tensor big = randn({3, 4}, 43, 1e4f), onehot({3, 4}, 0.0f);
  for (int64_t i = 0; i < 3; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < 4; ++k)
      if (big.at(i, k) > big.at(i, best)) best = k;
    onehot.at(i, best) = 1.0f;
  }
  const auto r = ssl::soft_cross_entropy()(big, onehot);
  CHECK(std::isfinite(r.value));
  CHECK(r.value == Approx(0.0).margin(1e-6));
  CHECK(all_finite(r.grad_logits));
  // rows of zero targets contribute nothing (gradient 0 there)
  const auto z = ssl::soft_cross_entropy()(logits, tensor({6, 5}, 0.0f));
  CHECK(z.value == 0.0f);
  for (int64_t k = 0; k < z.grad_logits.numel(); ++k) CHECK(z.grad_logits[k] == 0.0f);
}

TEST_CASE("soft_cross_entropy rejects bad input with typed errors") {
  const ssl::soft_cross_entropy loss;
  const tensor logits = randn({4, 3}, 44);
  tensor targets({4, 3}, 1.0f / 3.0f);
  CHECK_THROWS_AS(ssl::soft_cross_entropy(-0.1f), ssl::value_error);
  CHECK_THROWS_AS(ssl::soft_cross_entropy(1.5f), ssl::value_error);
  CHECK_THROWS_AS(loss(logits, tensor({4, 4}, 0.25f)), ssl::shape_error);
  CHECK_THROWS_WITH(loss(logits, tensor({3, 3}, 0.25f)), Catch::Contains("(4, 3)") && Catch::Contains("(3, 3)"));
  CHECK_THROWS_AS(loss(tensor({12}, 0.0f), tensor({12}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_AS(loss(tensor({0, 3}), tensor({0, 3})), ssl::shape_error);
  targets.at(2, 1) = -0.5f;
  CHECK_THROWS_AS(loss(logits, targets), ssl::value_error);
  CHECK_THROWS_WITH(loss(logits, targets),
                    Catch::Contains(">= 0") && Catch::Contains("-0.5") && Catch::Contains("row 2"));
  targets.at(2, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(loss(logits, targets), ssl::value_error);
  targets.at(2, 1) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(loss(logits, targets), ssl::value_error);
}
