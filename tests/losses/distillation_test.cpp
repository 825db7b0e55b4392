// dino, masked_reconstruction, cross_entropy: PyTorch fixtures, gradient checks, state, bad input.
#include <ssl/losses/cross_entropy.hpp>
#include <ssl/losses/dino.hpp>
#include <ssl/losses/masked_reconstruction.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

TEST_CASE("dino matches PyTorch, and its center follows the EMA") {
  for_each_case("dino.json", [](const fixture_case& c) {
    const tensor s = c.t("student"), t = c.t("teacher");
    ssl::dino loss(s.dim(2), c.s("student_temp"), c.s("teacher_temp"), c.s("momentum"));
    loss.load_center(c.t("center"));
    const auto r = loss(s, t);
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_student, c.t("grad_student")) <= 1e-4);
    loss.update_center(t);
    CHECK(rel_error(loss.center(), c.t("new_center")) <= 1e-4);
  });
}

TEST_CASE("dino gradient passes the checker; temperature schedule") {
  ssl::dino loss(6, 0.2f, 0.1f);
  const tensor s = randn({3, 2, 6}, 31), t = randn({2, 2, 6}, 32);
  loss.update_center(t);
  const auto r = loss(s, t);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], t).value); }, {s}, {r.grad_student});
  CHECK(ssl::dino::warmup_teacher_temperature(0.04f, 0.07f, 30, 0) == Approx(0.04f));
  CHECK(ssl::dino::warmup_teacher_temperature(0.04f, 0.07f, 30, 29) == Approx(0.07f));
  CHECK(ssl::dino::warmup_teacher_temperature(0.04f, 0.07f, 30, 100) == Approx(0.07f));
  // a sharper teacher changes the loss
  const float before = loss(s, t).value;
  loss.set_teacher_temperature(0.01f);
  CHECK(loss.teacher_temperature() == 0.01f);
  CHECK(loss(s, t).value != Approx(before));
  CHECK_THROWS_AS(loss.set_teacher_temperature(0.0f), ssl::value_error);
  CHECK_THROWS_AS(loss(randn({3, 2, 5}, 1), t), ssl::shape_error);
  CHECK_THROWS_AS(loss(s, randn({4, 2, 6}, 1)), ssl::shape_error);
  CHECK_THROWS_AS(ssl::dino(6, 0.1f, 0.04f, 1.5f), ssl::value_error);
}

TEST_CASE("masked_reconstruction matches PyTorch and passes the checker") {
  for_each_case("masked_reconstruction.json", [](const fixture_case& c) {
    const auto r = ssl::masked_reconstruction(c.s("norm_pix") != 0.0f)(c.t("pred"), c.t("target"), c.t("mask"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_pred, c.t("grad_pred")) <= 1e-4);
  });
  for (bool norm : {true, false}) {
    const ssl::masked_reconstruction loss(norm);
    const tensor pred = randn({2, 3, 4}, 33), target = randn({2, 3, 4}, 34);
    const tensor mask = tensor::from({2, 3}, {1, 0, 1, 0, 1, 1});
    const auto r = loss(pred, target, mask);
    CHECK(r.grad_pred.at(0, 1, 2) == 0.0f);  // visible patch: no gradient
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], target, mask).value); }, {pred},
                     {r.grad_pred});
    CHECK_THROWS_AS(loss(pred, target, tensor({2, 3}, 0.0f)), ssl::value_error);
    CHECK_THROWS_AS(loss(pred, target, tensor({2, 4}, 1.0f)), ssl::shape_error);
    CHECK_THROWS_AS(loss(pred, randn({2, 3, 5}, 1), mask), ssl::shape_error);
  }
}

TEST_CASE("masked_reconstruction's L1 (SimMIM) matches the official loss on images and passes the checker") {
  // The fixture computes SimMIM's (|x - x_rec| * mask).sum() / mask.sum() / C on (N, C, H, W) images
  // with the patch mask upsampled to pixels; ssl sees the patchified images.
  for_each_case("masked_reconstruction_l1.json", [](const fixture_case& c) {
    const auto loss = ssl::masked_reconstruction::l1(c.s("norm_pix") != 0.0f);
    CHECK(loss.absolute());
    const auto r = loss(c.t("pred"), c.t("target"), c.t("mask"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_pred, c.t("grad_pred")) <= 1e-4);
  });
  for (bool norm : {false, true}) {
    const auto loss = ssl::masked_reconstruction::l1(norm);
    const tensor pred = randn({2, 3, 4}, 36), target = randn({2, 3, 4}, 37);
    const tensor mask = tensor::from({2, 3}, {0, 1, 1, 1, 0, 1});
    const auto r = loss(pred, target, mask);
    CHECK(r.grad_pred.at(1, 1, 3) == 0.0f);  // visible patch: no gradient
    // every masked value's gradient is +-1 / (P sum mask): the sign of its error
    CHECK(std::abs(r.grad_pred.at(0, 1, 0)) == Approx(1.0 / (4.0 * 4.0)));
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], target, mask).value); }, {pred},
                     {r.grad_pred});
    // L1 differs from the squared error on the same inputs
    CHECK(r.value != Approx(ssl::masked_reconstruction(norm)(pred, target, mask).value));
  }
  // a zero error has a zero (sub)gradient, as torch's sign(0)
  const tensor t = randn({1, 2, 3}, 38);
  const auto z = ssl::masked_reconstruction::l1()(t, t, tensor({1, 2}, 1.0f));
  CHECK(z.value == 0.0f);
  CHECK(z.grad_pred.vec().norm() == 0.0f);
}

TEST_CASE("cross_entropy matches PyTorch (smoothing, class weights) and passes the checker") {
  for_each_case("cross_entropy.json", [](const fixture_case& c) {
    std::vector<float> w;
    if (c.has("weights")) w = c.t("weights").to_vector();
    const auto r = ssl::cross_entropy(c.s("smoothing"), w)(c.t("logits"), c.labels("labels"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_logits, c.t("grad_logits")) <= 1e-4);
  });
  const ssl::cross_entropy loss(0.1f, {0.5f, 2.0f, 1.0f, 0.25f});
  const tensor logits = randn({5, 4}, 35);
  const std::vector<int64_t> labels{0, 3, 1, 1, 2};
  const auto r = loss(logits, labels);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], labels).value); }, {logits},
                   {r.grad_logits});
  CHECK_THROWS_AS(loss(logits, std::vector<int64_t>{0, 1, 2, 3, 4}), ssl::value_error);
  CHECK_THROWS_AS(loss(logits, std::vector<int64_t>{0, 1}), ssl::shape_error);
  CHECK_THROWS_AS(loss(randn({5, 3}, 1), labels), ssl::shape_error);
  CHECK_THROWS_AS(ssl::cross_entropy(1.5f), ssl::value_error);
  try {
    loss(logits, std::vector<int64_t>{0, 1, 2, 3, 7});
  } catch (const ssl::value_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("[0, 4)") && Catch::Contains("7"));
  }
}
