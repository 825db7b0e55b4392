// DINOv2's teacher-side and patch losses: sinkhorn_knopp and ibot_patch against PyTorch (DINOv2's
// official formulas), gradient checks, dino::with_targets, bad input.
#include <ssl/losses/dino.hpp>
#include <ssl/losses/ibot_patch.hpp>
#include <ssl/losses/sinkhorn_knopp.hpp>

#include <limits>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

namespace {
std::vector<int64_t> counts_of(const tensor& c) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < c.numel(); ++i) out.push_back(int64_t(c[i]));
  return out;
}
}  // namespace

TEST_CASE("sinkhorn_knopp matches DINOv2's sinkhorn_knopp_teacher; rows are distributions") {
  for_each_case("sinkhorn_knopp.json", [](const fixture_case& c) {
    const tensor t = c.t("teacher");
    const tensor q = ssl::sinkhorn_knopp(t, c.s("teacher_temp"), int(c.s("iterations")));
    CHECK(q.shape() == t.shape());
    CHECK(rel_error(q, c.t("targets")) <= 1e-5);
    const int64_t R = t.dim(0), K = t.dim(1);
    for (int64_t r = 0; r < R; ++r) {
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += q[r * K + k];
      CHECK(sum == Approx(1.0).epsilon(1e-5));
    }
  });
}

TEST_CASE("sinkhorn_knopp spreads a collapsed batch; shift invariance; bad input") {
  // every row prefers prototype 0: softmax would give each row the same peaked target,
  // Sinkhorn-Knopp pushes the batch's mass towards equal prototype totals
  const int64_t R = 64, K = 8;
  tensor t = randn({R, K}, 5, 0.1f);
  for (int64_t r = 0; r < R; ++r) t[r * K] += 1.0f;
  const tensor q = ssl::sinkhorn_knopp(t, 0.1f, 10);
  for (int64_t k = 0; k < K; ++k) {
    double col = 0;
    for (int64_t r = 0; r < R; ++r) col += q[r * K + k];
    CHECK(col == Approx(double(R) / double(K)).epsilon(0.02));
  }
  // adding a constant to every logit changes nothing (the first normalisation cancels it)
  tensor shifted = t;
  for (int64_t i = 0; i < shifted.numel(); ++i) shifted[i] += 50.0f;
  CHECK(rel_error(ssl::sinkhorn_knopp(shifted, 0.1f, 10), q) <= 1e-5);
  // logits far apart at a low temperature: no overflow, no NaN
  tensor wide = randn({16, 32}, 6, 30.0f);
  const tensor qw = ssl::sinkhorn_knopp(wide, 0.04f);
  for (int64_t i = 0; i < qw.numel(); ++i) CHECK(std::isfinite(qw[i]));
  CHECK_THROWS_AS(ssl::sinkhorn_knopp(t, 0.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::sinkhorn_knopp(t, 0.1f, 0), ssl::value_error);
  CHECK_THROWS_AS(ssl::sinkhorn_knopp(tensor({5}, 1.0f), 0.1f), ssl::shape_error);
  tensor bad = t;
  bad[7] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(ssl::sinkhorn_knopp(bad, 0.1f), ssl::numeric_error);
  // unchecked (a method checks its loss instead): the NaN reaches the targets, not silently zeroed
  const tensor qn = ssl::sinkhorn_knopp(bad, 0.1f, 3, /*check_finite=*/false);
  bool any_nan = false;
  for (int64_t i = 0; i < qn.numel(); ++i) any_nan = any_nan || std::isnan(qn[i]);
  CHECK(any_nan);
  // per-prototype shift: a prototype far below every other keeps its share of the mass
  tensor far = randn({6, 4}, 7, 0.1f);
  for (int64_t r = 0; r < 6; ++r) far[r * 4 + 3] -= 60.0f;  // 1500 tau below: underflows a global shift
  const tensor qf = ssl::sinkhorn_knopp(far, 0.04f, 20);
  double col3 = 0;
  for (int64_t r = 0; r < 6; ++r) col3 += qf[r * 4 + 3];
  CHECK(col3 == Approx(6.0 / 4.0).epsilon(0.05));
}

TEST_CASE("ibot_patch matches DINOv2's forward_masked; the patch center follows the EMA") {
  for_each_case("ibot_patch.json", [](const fixture_case& c) {
    const tensor s = c.t("student"), t = c.t("teacher");
    const std::vector<int64_t> counts = counts_of(c.t("counts"));
    ssl::ibot_patch loss(s.dim(1), c.s("student_temp"), c.s("teacher_temp"), c.s("momentum"));
    loss.load_center(c.t("center"));
    const bool sk = c.s("sinkhorn") != 0.0f;
    const tensor targets = sk ? ssl::sinkhorn_knopp(t, c.s("teacher_temp")) : loss.teacher_probabilities(t);
    CHECK(rel_error(targets, c.t("targets")) <= 1e-5);
    const auto r = sk ? loss.with_targets(s, targets, counts) : loss(s, t, counts);
    CHECK(rel(r.value, c.s("value")) <= 1e-5);
    CHECK(rel_error(r.grad_student, c.t("grad_student")) <= 1e-4);
    loss.update_center(t);
    CHECK(rel_error(loss.center(), c.t("new_center")) <= 1e-5);
  });
}

TEST_CASE("ibot_patch gradient passes the checker; empty masks; bad input") {
  ssl::ibot_patch loss(6, 0.2f, 0.1f);
  const std::vector<int64_t> counts{2, 0, 3};
  const tensor s = randn({5, 6}, 41), t = randn({5, 6}, 42);
  loss.update_center(t);
  const auto r = loss(s, t, counts);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], t, counts).value); }, {s},
                   {r.grad_student});
  // weights: image 0's two rows count 1/2 each, image 2's three rows 1/3 each, all over N = 3
  const tensor targets = loss.teacher_probabilities(t);
  double expect = 0;
  for (int64_t p = 0; p < 5; ++p) {
    tensor sp({1, 6}), tp({1, 6});
    for (int64_t k = 0; k < 6; ++k) sp[k] = s[p * 6 + k], tp[k] = targets[p * 6 + k];
    expect += double(loss.with_targets(sp, tp, {1}).value) / (p < 2 ? 2.0 : 3.0) / 3.0;
  }
  CHECK(r.value == Approx(expect).epsilon(1e-5));
  // no hidden patch at all: zero loss, an empty gradient
  const auto none = loss.with_targets(tensor({0, 6}), tensor({0, 6}), {0, 0});
  CHECK(none.value == 0.0f);
  CHECK(none.grad_student.shape() == ssl::shape{0, 6});
  CHECK_THROWS_AS(loss(s, t, {2, 2}), ssl::shape_error);         // counts add up to 4, not 5
  CHECK_THROWS_AS(loss(s, t, {6, -1}), ssl::value_error);        // negative count
  CHECK_THROWS_AS(loss(s, t, {}), ssl::value_error);             // no image
  CHECK_THROWS_AS(loss(randn({5, 7}, 1), t, counts), ssl::shape_error);
  CHECK_THROWS_AS(loss.with_targets(s, randn({4, 6}, 1), counts), ssl::shape_error);
  CHECK_THROWS_AS(ssl::ibot_patch(6, 0.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::ibot_patch(0), ssl::value_error);
}

TEST_CASE("dino::with_targets equals the loss on the centred targets, and takes Sinkhorn-Knopp targets") {
  ssl::dino loss(12, 0.1f, 0.04f);
  const tensor s = randn({4, 3, 12}, 51), t = randn({2, 3, 12}, 52);
  loss.update_center(randn({2, 3, 12}, 53));
  const auto a = loss(s, t), b = loss.with_targets(s, loss.teacher_probabilities(t));
  CHECK(a.value == b.value);
  CHECK(rel_error(a.grad_student, b.grad_student) == 0.0);
  const tensor q = ssl::sinkhorn_knopp(t, 0.04f);
  const auto r = loss.with_targets(s, q);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss.with_targets(in[0], q).value); }, {s},
                   {r.grad_student});
  CHECK_THROWS_AS(loss.with_targets(s, randn({2, 4, 12}, 1)), ssl::shape_error);  // batch 4, not 3
  CHECK_THROWS_AS(loss.with_targets(s, randn({5, 3, 12}, 1)), ssl::shape_error);  // more teacher than student crops
}
