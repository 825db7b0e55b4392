// data2vec_loss: targets (LN of the average of the top block outputs) and the scaled smooth-L1 /
// squared-error regression against PyTorch fixtures written from fairseq's vision model; finite
// differences, the normaliser, thread-count independence, bad input.
#include <ssl/core/parallel.hpp>
#include <ssl/losses/data2vec.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

namespace {
/// The K block outputs of a fixture, (K, N, T, D) -> K tensors (N, T, D).
std::vector<tensor> split_layers(const tensor& layers) {
  const int64_t K = layers.dim(0), n = layers.numel() / K;
  std::vector<tensor> out;
  for (int64_t k = 0; k < K; ++k) {
    tensor y(ssl::shape{layers.dim(1), layers.dim(2), layers.dim(3)});
    std::copy_n(layers.data() + k * n, n, y.data());
    out.push_back(std::move(y));
  }
  return out;
}
/// Rows `rows` of t viewed as (N T, D).
tensor take_rows(const tensor& t, const std::vector<int64_t>& rows) {
  const int64_t D = t.dim(-1);
  tensor out(ssl::shape{int64_t(rows.size()), D});
  for (size_t m = 0; m < rows.size(); ++m) std::copy_n(t.data() + rows[m] * D, D, out.data() + int64_t(m) * D);
  return out;
}
}  // namespace

TEST_CASE("data2vec targets and loss match PyTorch (smooth L1 beta 1 / 2, squared error, LN per layer / of the mean)",
          "[data2vec]") {
  int cases = 0, squared = 0, per_layer = 0;
  for_each_case("data2vec.json", [&](const fixture_case& c) {
    ++cases;
    const ssl::data2vec_loss loss({.beta = c.s("beta"),
                                   .loss_scale = c.s("loss_scale"),
                                   .layer_norm_target_layer = c.s("layer_norm_target_layer") != 0.0f,
                                   .layer_norm_targets = c.s("layer_norm_targets") != 0.0f});
    squared += c.s("beta") == 0.0f;
    per_layer += c.s("layer_norm_target_layer") != 0.0f;
    const tensor t = loss.targets(split_layers(c.t("layers")));
    CHECK(rel_error(t, c.t("targets")) <= 1e-5);
    const tensor target = take_rows(t, c.labels("rows"));
    const tensor pred = c.t("pred");
    const auto r = loss(pred, target);
    CHECK(rel(r.value, c.s("value")) <= 1e-5);
    CHECK(rel_error(r.grad_pred, c.t("grad_pred")) <= 1e-5);
  });
  CHECK(cases == 4);
  CHECK(squared == 1);
  CHECK(per_layer == 2);
}

TEST_CASE("data2vec loss gradients pass finite differences; the normaliser rescales value and gradient", "[data2vec]") {
  const tensor target = randn({5, 6}, 51);
  tensor pred = randn({5, 6}, 52, 2.0f);
  for (int64_t i = 0; i < pred.numel(); ++i) {  // keep every |pred - target| 0.1 away from the kink at 2
    const float d = pred[i] - target[i];
    if (std::abs(std::abs(d) - 2.0f) < 0.1f) pred[i] = target[i] + (d < 0 ? -2.5f : 2.5f);
  }
  for (float beta : {0.0f, 2.0f}) {
    INFO("beta " << beta);
    const ssl::data2vec_loss loss({.beta = beta});
    const auto r = loss(pred, target);
    // a step of 1e-2 stays on one side of the kink: f is exactly quadratic or linear around every
    // element, so the central difference is exact up to the float rounding of the value
    expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], target).value); }, {pred},
                     {r.grad_pred}, 1e-2, 1e-4);
    // normaliser 20 instead of M = 5: a quarter of the value and gradient (data-parallel global counts)
    const auto q = loss(pred, target, 20.0);
    CHECK(q.value == Approx(r.value / 4).epsilon(1e-6));
    for (int64_t i = 0; i < pred.numel(); ++i) CHECK(q.grad_pred[i] == Approx(r.grad_pred[i] / 4).epsilon(1e-6));
    // the default scale is 1 / sqrt(D): the same loss with loss_scale 1 is sqrt(6) times larger
    const auto u = ssl::data2vec_loss({.beta = beta, .loss_scale = 1.0f})(pred, target);
    CHECK(u.value == Approx(r.value * std::sqrt(6.0)).epsilon(1e-6));
  }
  // targets: layers with LN per layer: every gradient-free path gives unit-variance rows
  const ssl::data2vec_loss ln({.layer_norm_target_layer = true, .layer_norm_targets = false});
  const tensor a = randn({2, 3, 8}, 53, 3.0f), b = randn({2, 3, 8}, 54, 0.5f);
  const tensor t = ln.targets<ssl::cpu>({a, b});
  const ssl::data2vec_loss plain({.layer_norm_targets = false});
  const tensor avg = plain.targets<ssl::cpu>({a, b});
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(avg[i] == Approx(0.5f * (a[i] + b[i])).margin(1e-6));
  double mean = 0;
  for (int64_t i = 0; i < 8; ++i) mean += t[i];
  CHECK(std::abs(mean) < 1e-5);
}

TEST_CASE("data2vec loss does not depend on the thread count", "[data2vec]") {
  const int saved = ssl::num_threads();
  const tensor pred = randn({301, 24}, 55, 1.5f), target = randn({301, 24}, 56);
  const ssl::data2vec_loss loss;
  ssl::set_num_threads(1);
  const auto one = loss(pred, target);
  for (int th : {2, 3}) {
    ssl::set_num_threads(th);
    const auto many = loss(pred, target);
    CHECK(many.value == one.value);
    CHECK(rel_error(many.grad_pred, one.grad_pred, 1e-30) == 0.0);
  }
  ssl::set_num_threads(saved);
}

TEST_CASE("data2vec loss rejects bad options, shapes and layers with messages naming expected and found", "[data2vec]") {
  CHECK_THROWS_AS(ssl::data2vec_loss({.beta = -1.0f}), ssl::value_error);
  CHECK_THROWS_WITH(ssl::data2vec_loss({.loss_scale = 0.0f}), Catch::Contains("loss_scale") && Catch::Contains("got 0"));
  const ssl::data2vec_loss loss;
  CHECK_THROWS_AS(loss(tensor({2, 3}, 1.0f), tensor({3, 2}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(loss(tensor({6}, 1.0f), tensor({6}, 1.0f)),
                    Catch::Contains("data2vec_loss pred") && Catch::Contains("expected (M, D)"));
  CHECK_THROWS_AS(loss.targets<ssl::cpu>({}), ssl::value_error);
  CHECK_THROWS_WITH(loss.targets<ssl::cpu>({tensor({2, 3, 4}, 1.0f), tensor({2, 3, 5}, 1.0f)}),
                    Catch::Contains("block output") && Catch::Contains("(2, 3, 4)") && Catch::Contains("(2, 3, 5)"));
  CHECK_THROWS_AS(loss.targets<ssl::cpu>({tensor({6, 4}, 1.0f)}), ssl::shape_error);
}
