#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/pretext/colorization.hpp>

#include "support/fixtures.hpp"

using Catch::Matchers::Contains;
using ssl::pretext::ab_quantizer;

namespace {
ssl::tensor<ssl::cpu> pixel(float r, float g, float b) { return ssl::tensor<ssl::cpu>::from({3, 1, 1}, {r, g, b}); }
}  // namespace

TEST_CASE("rgb_to_lab gives the known values and matches the reference") {
  const auto white = ssl::pretext::rgb_to_lab(pixel(1, 1, 1));
  CHECK(white[0] == Approx(100.0).margin(1e-3));
  CHECK(white[1] == Approx(0.0).margin(1e-2));
  CHECK(white[2] == Approx(0.0).margin(1e-2));
  const auto red = ssl::pretext::rgb_to_lab(pixel(1, 0, 0));
  CHECK(red[0] == Approx(53.24).margin(0.01));
  CHECK(red[1] == Approx(80.09).margin(0.01));
  CHECK(red[2] == Approx(67.20).margin(0.01));
  const auto blue = ssl::pretext::rgb_to_lab(pixel(0, 0, 1));
  CHECK(blue[2] == Approx(-107.86).margin(0.01));
  ssl_test::fixture fx("pretext/lab.json");
  CHECK(ssl_test::rel_error(ssl::pretext::rgb_to_lab(fx.tensor("rgb")), fx.tensor("lab")) <= 1e-4);
}

TEST_CASE("lab_to_rgb inverts rgb_to_lab") {
  ssl::tensor<ssl::cpu> img({3, 8, 8});
  ssl::rng g(1);
  for (int64_t i = 0; i < img.numel(); ++i) img[i] = g.uniform();
  img[0] = 0.0f;  // a dark value on the linear branch
  const auto back = ssl::pretext::lab_to_rgb(ssl::pretext::rgb_to_lab(img));
  CHECK(ssl_test::rel_error(back, img) <= 1e-4);
  CHECK_THROWS_WITH(ssl::pretext::rgb_to_lab(ssl::tensor<ssl::cpu>({2, 4, 4})), Contains("expected 3 channels"));
}

TEST_CASE("the in-gamut ab bins number a few hundred") {
  // strict sRGB sampling keeps ~262 cells of step 10 (Zhang et al.'s looser gamut has 313)
  const auto q = ab_quantizer::from_gamut();
  INFO("bins: " << q.bins());
  CHECK(q.bins() >= 240);
  CHECK(q.bins() <= 330);
  CHECK(ab_quantizer::from_gamut(16).bins() < q.bins());  // a coarser sampling misses some cells
  // the bins of the primaries are in gamut and hard encoding finds them
  const auto red = ssl::pretext::rgb_to_lab(pixel(1, 0, 0));
  const auto bin = q.hard_encode(red[1], red[2]);
  CHECK(q.centres()[size_t(bin)][0] == 80.0f);
  CHECK(q.centres()[size_t(bin)][1] == 70.0f);
  // far outside the gamut: the nearest bin is still returned
  const auto far = q.hard_encode(-200.0f, -200.0f);
  for (size_t i = 0; i < q.centres().size(); ++i) {
    const auto& c = q.centres()[i];
    const auto& f = q.centres()[size_t(far)];
    CHECK((c[0] + 200) * (c[0] + 200) + (c[1] + 200) * (c[1] + 200) >= (f[0] + 200) * (f[0] + 200) + (f[1] + 200) * (f[1] + 200));
  }
}

TEST_CASE("soft encoding spreads over the 5 nearest bins with Gaussian weights") {
  const ab_quantizer q({{0, 0}, {10, 0}, {0, 10}, {10, 10}, {-10, 0}, {20, 20}, {-30, 0}}, 10.0f);
  const auto ab = ssl::tensor<ssl::cpu>::from({2, 1, 2}, {3.0f, 0.0f, 4.0f, 0.0f});  // pixels (3,4) and (0,0)
  const auto s = q.soft_encode(ab);
  REQUIRE(s.shape() == ssl::shape{7, 1, 2});
  double sum = 0;
  int nonzero = 0;
  for (int64_t b = 0; b < 7; ++b) {
    sum += s[b * 2];
    nonzero += s[b * 2] > 0;
  }
  CHECK(sum == Approx(1.0));
  CHECK(nonzero == 5);
  CHECK(s[5 * 2] == 0.0f);  // (20,20) and (-30,0) are the two farthest from (3,4)
  CHECK(s[6 * 2] == 0.0f);
  // ratio of weights = exp(-(d1^2 - d0^2) / (2 sigma^2)): (0,0) at d^2 = 25, (10,0) at d^2 = 65
  CHECK(s[1 * 2] / s[0] == Approx(std::exp(-(65.0 - 25.0) / 50.0)));
  CHECK(q.hard_encode(ab) == std::vector<int64_t>{0, 0});
  CHECK_THROWS_WITH(q.soft_encode(ssl::tensor<ssl::cpu>({3, 1, 1})), Contains("expected ab channels of shape (2, H, W)"));
}

TEST_CASE("rebalancing weights have expectation 1 and favour rare colours") {
  const auto q = ab_quantizer::from_gamut(24);
  // an empirical distribution from a greyish image with a few saturated pixels
  ssl::tensor<ssl::cpu> img({3, 16, 16});
  ssl::rng g(2);
  for (int64_t i = 0; i < 256; ++i) {
    const float grey = g.uniform();
    const bool vivid = i % 16 == 0;
    img[i] = vivid ? 1.0f : grey;
    img[256 + i] = vivid ? 0.0f : grey + 0.02f * g.uniform();
    img[512 + i] = vivid ? 0.0f : grey;
  }
  const auto lab = ssl::pretext::rgb_to_lab(img);
  ssl::tensor<ssl::cpu> ab({2, 16, 16});
  std::copy(lab.data() + 256, lab.data() + 768, ab.data());
  auto counts = ssl::tensor<ssl::cpu>::zeros({q.bins()});
  q.accumulate_histogram(ab, counts);
  const auto r = q.rebalancing_weights(counts);
  double expectation = 0, total = 0;
  for (int64_t b = 0; b < q.bins(); ++b) {
    expectation += double(r.smoothed[b]) * r.weights[b];
    total += r.smoothed[b];
  }
  CHECK(total == Approx(1.0));
  CHECK(expectation == Approx(1.0));
  const auto grey_bin = q.hard_encode(0.0f, 0.0f), red_bin = q.hard_encode(80.0f, 67.0f);
  CHECK(r.weights[grey_bin] < r.weights[red_bin]);
  // lambda = 1: uniform weights, all 1
  const auto flat = q.rebalancing_weights(counts, 5.0f, 1.0f);
  for (int64_t b = 0; b < q.bins(); b += 17) CHECK(flat.weights[b] == Approx(1.0));
  CHECK_THROWS_WITH(q.rebalancing_weights(ssl::tensor<ssl::cpu>({3})), Contains("bin frequencies, got shape (3)"));
}
