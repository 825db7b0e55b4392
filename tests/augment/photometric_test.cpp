// Colour and filter transforms against torchvision's functional ops with fixed parameters
// (fixtures from scripts/fixtures/augment.py).
#include <catch2/catch.hpp>
#include <ssl/augment/brightness_contrast.hpp>
#include <ssl/augment/color_jitter.hpp>
#include <ssl/augment/cutout.hpp>
#include <ssl/augment/gaussian_blur.hpp>
#include <ssl/augment/gaussian_noise.hpp>
#include <ssl/augment/grayscale.hpp>
#include <ssl/augment/normalize.hpp>
#include <ssl/augment/sobel.hpp>
#include <ssl/augment/solarize.hpp>

#include "support/fixtures.hpp"

namespace aug = ssl::augment;
using ssl::tensor;
using ssl::cpu;

namespace {
const ssl_test::fixture& photometric() {
  static const ssl_test::fixture f("augment/photometric.json");
  return f;
}
}  // namespace

TEST_CASE("colour adjustments match torchvision adjust_*") {
  const auto& f = photometric();
  const tensor<cpu> rgb = f.tensor("rgb"), grey = f.tensor("grey");
  CHECK(ssl_test::rel_error(aug::adjust_brightness(rgb, 1.3f), f.tensor("brightness_1.3_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::adjust_contrast(rgb, 0.6f), f.tensor("contrast_0.6_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::adjust_contrast(grey, 1.5f), f.tensor("contrast_1.5_grey")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::adjust_saturation(rgb, 1.7f), f.tensor("saturation_1.7_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::adjust_saturation(rgb, 0.3f), f.tensor("saturation_0.3_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::adjust_hue(rgb, 0.23f), f.tensor("hue_0.23_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::adjust_hue(rgb, -0.4f), f.tensor("hue_-0.4_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::grayscale{}.apply(rgb), f.tensor("grayscale_rgb")) <= 1e-4);
  // saturation, hue and greyscale leave non-RGB images unchanged
  CHECK(ssl_test::rel_error(aug::adjust_hue(grey, 0.3f), grey) == 0.0);
  CHECK(ssl_test::rel_error(aug::grayscale{}.apply(grey), grey) == 0.0);
}

TEST_CASE("color_jitter applies its factors in the drawn order, as torchvision ColorJitter") {
  const auto& f = photometric();
  using S = aug::color_jitter::step;
  aug::color_jitter::params p;
  p.order = {S::hue, S::brightness, S::saturation, S::contrast};
  p.brightness = 0.75f;
  p.contrast = 1.2f;
  p.saturation = 1.4f;
  p.hue = -0.07f;
  CHECK(ssl_test::rel_error(aug::color_jitter{}.apply(f.tensor("rgb"), p), f.tensor("jitter_rgb")) <= 1e-4);
  // another order gives another image
  p.order = {S::contrast, S::saturation, S::brightness, S::hue};
  CHECK(ssl_test::rel_error(aug::color_jitter{}.apply(f.tensor("rgb"), p), f.tensor("jitter_rgb")) > 1e-3);
  // drawn factors lie in their ranges and every order occurs
  aug::color_jitter j{0.8f, 0.5f, 0.3f, 0.2f};
  ssl::rng g(11);
  int first[4] = {};
  for (int i = 0; i < 400; ++i) {
    const auto q = j.draw(f.tensor("rgb"), g);
    REQUIRE(q.brightness >= 0.2f);
    REQUIRE(q.brightness <= 1.8f);
    REQUIRE(q.contrast >= 0.5f);
    REQUIRE(q.saturation <= 1.3f);
    REQUIRE(std::abs(q.hue) <= 0.2f);
    first[int(q.order[0])]++;
  }
  for (int c : first) CHECK(c == Approx(100).margin(35));
}

TEST_CASE("gaussian_blur matches torchvision gaussian_blur (reflect padding)") {
  const auto& f = photometric();
  CHECK(ssl_test::rel_error(aug::gaussian_blur{5}.apply(f.tensor("rgb"), {1.3f}), f.tensor("blur_k5_s1.3_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::gaussian_blur{7}.apply(f.tensor("rgb"), {2.0f}), f.tensor("blur_k7_s2_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::gaussian_blur{3}.apply(f.tensor("grey"), {0.7f}), f.tensor("blur_k3_s0.7_grey")) <= 1e-4);
  CHECK(aug::blur_kernel_for(224) == 23);
  CHECK(aug::blur_kernel_for(96) == 9);
  CHECK(aug::blur_kernel_for(28) == 3);
  // a kernel wider than the image still reflects into range
  const tensor<cpu> tiny(ssl::shape{1, 2, 3}, 0.25f);
  const tensor<cpu> blurred = aug::gaussian_blur{9}.apply(tiny, {3.0f});
  for (int64_t i = 0; i < blurred.numel(); ++i) CHECK(blurred[i] == Approx(0.25f));
}

TEST_CASE("noise, cutout, solarize, normalize, sobel and brightness_contrast match their references") {
  const auto& f = photometric();
  const tensor<cpu> rgb = f.tensor("rgb"), grey = f.tensor("grey");
  CHECK(ssl_test::rel_error(aug::gaussian_noise{}.apply(rgb, {0.2f, f.tensor("noise")}), f.tensor("noise_0.2_rgb")) <= 1e-4);
  aug::cutout erase;
  erase.value = 0.5f;
  CHECK(ssl_test::rel_error(erase.apply(rgb, {2, 3, 4, 5}), f.tensor("erase_rgb")) == 0.0);
  CHECK(ssl_test::rel_error(aug::solarize{0.6f}.apply(rgb), f.tensor("solarize_0.6_rgb")) <= 1e-6);
  const aug::normalize norm{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  CHECK(ssl_test::rel_error(norm.apply(rgb), f.tensor("normalize_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::sobel{}.apply(rgb), f.tensor("sobel_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::sobel{}.apply(grey), f.tensor("sobel_grey")) <= 1e-4);
  CHECK(ssl_test::rel_error(aug::brightness_contrast{}.apply(grey, {1.25f, 0.7f}), f.tensor("brightness_contrast_grey")) <= 1e-4);
}

TEST_CASE("random draws of noise and cutout behave") {
  const tensor<cpu> img(ssl::shape{3, 32, 32}, 0.5f);
  ssl::rng g(4);
  // noise: std of (out - img) close to sigma (no clamping at 0.5 +- 3 * 0.05)
  const tensor<cpu> noisy = aug::gaussian_noise{0.05f, 0.05f}(img, g);
  double s2 = 0;
  for (int64_t i = 0; i < noisy.numel(); ++i) s2 += double(noisy[i] - 0.5f) * (noisy[i] - 0.5f);
  CHECK(std::sqrt(s2 / double(noisy.numel())) == Approx(0.05).epsilon(0.1));
  // cutout: erased area fraction within the scale range
  aug::cutout c;
  c.value = 2.0f;
  for (int i = 0; i < 50; ++i) {
    const tensor<cpu> out = c(img, g);
    int64_t erased = 0;
    for (int64_t k = 0; k < out.numel(); ++k) erased += out[k] == 2.0f;
    const double frac = double(erased) / double(out.numel());
    CHECK(frac >= 0.015);
    CHECK(frac <= 0.36);
  }
}

TEST_CASE("cutout's probability and per-pixel fill (random erasing)") {
  const tensor<cpu> img(ssl::shape{3, 16, 12}, -1.0f);  // outside [0, 1): erased values are visible
  // per-pixel fill: the same box as the constant fill from the same seed, filled with the drawn
  // uniform [0, 1) values channel by channel
  aug::cutout constant, noisy;
  noisy.fill = aug::cutout::fill_mode::per_pixel_noise;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    ssl::rng a(seed), b(seed), c(seed);
    const auto box = constant.draw(img, a), q = noisy.draw(img, b);
    CHECK(q.top == box.top);
    CHECK(q.left == box.left);
    CHECK(q.height == box.height);
    CHECK(q.width == box.width);
    CHECK(box.noise.rank() == 0);  // constant fill: no noise drawn
    if (q.height == 0) continue;
    REQUIRE(q.noise.shape() == ssl::shape{3, q.height, q.width});
    const tensor<cpu> out = noisy(img, c);  // operator() = apply(draw)
    double sum = 0, sum2 = 0;
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t y = 0; y < 16; ++y)
        for (int64_t x = 0; x < 12; ++x) {
          const bool in = y >= q.top && y < q.top + q.height && x >= q.left && x < q.left + q.width;
          const float v = out.at(ch, y, x);
          if (!in) {
            CHECK(v == -1.0f);
            continue;
          }
          CHECK(v == q.noise.at(ch, y - q.top, x - q.left));
          CHECK(v >= 0.0f);
          CHECK(v < 1.0f);
          sum += v, sum2 += double(v) * v;
        }
    const double n = double(q.noise.numel()), var = sum2 / n - (sum / n) * (sum / n);
    if (n >= 30) CHECK(var == Approx(1.0 / 12.0).margin(0.04));  // uniform [0, 1): variance 1/12
  }
  // the probability p: 0 never erases, 0.25 about a quarter of the time
  auto erased = [&](const aug::cutout& e) {
    int hits = 0;
    for (uint64_t seed = 0; seed < 400; ++seed) {
      ssl::rng g(seed);
      hits += e.draw(img, g).height > 0;
    }
    return hits;
  };
  aug::cutout never;
  never.p = 0.0f;
  CHECK(erased(never) == 0);
  const aug::cutout re = aug::cutout::random_erasing(0.25f);
  CHECK(re.fill == aug::cutout::fill_mode::per_pixel_noise);
  CHECK(re.p == 0.25f);
  CHECK(re.scale_hi == Approx(1.0f / 3.0f));
  CHECK(re.ratio_hi == Approx(1.0f / 0.3f));
  CHECK(erased(re) == Approx(100).margin(30));
  // reproducible from the rng
  ssl::rng a(3), b(3);
  const tensor<cpu> ea = aug::cutout::random_erasing(1.0f)(img, a), eb = aug::cutout::random_erasing(1.0f)(img, b);
  CHECK(ssl_test::rel_error(ea, eb) == 0.0);
  // bad probability; a per-pixel fill of the wrong shape
  aug::cutout bad;
  bad.p = 1.5f;
  ssl::rng g(0);
  CHECK_THROWS_AS(bad(img, g), ssl::value_error);
  CHECK_THROWS_WITH(bad(img, g), Catch::Contains("[0, 1]") && Catch::Contains("1.5"));
  CHECK_THROWS_AS(noisy.apply(img, {1, 1, 2, 3, tensor<cpu>(ssl::shape{3, 3, 2})}), ssl::shape_error);
  CHECK_THROWS_AS(noisy.apply(img, {1, 1, 2, 3}), ssl::shape_error);
}

TEST_CASE("photometric transforms reject bad input with typed errors") {
  const tensor<cpu> rgb(ssl::shape{3, 8, 8}, 0.5f), grey(ssl::shape{1, 8, 8}, 0.5f);
  CHECK_THROWS_AS(aug::adjust_brightness(rgb, -1.0f), ssl::value_error);
  CHECK_THROWS_WITH(aug::adjust_hue(rgb, 0.7f), Catch::Contains("[-0.5, 0.5]") && Catch::Contains("0.7"));
  CHECK_THROWS_AS(aug::gaussian_blur{4}.apply(rgb, {1.0f}), ssl::value_error);
  CHECK_THROWS_WITH(aug::gaussian_blur{4}.apply(rgb, {1.0f}), Catch::Contains("odd") && Catch::Contains("4"));
  const aug::normalize norm{{0.1f, 0.2f, 0.3f}, {1.0f, 1.0f, 1.0f}};
  CHECK_THROWS_AS(norm.apply(grey), ssl::shape_error);
  CHECK_THROWS_WITH(norm.apply(grey), Catch::Contains("1 or 1") && Catch::Contains("3 means"));
  aug::gaussian_noise noise;
  CHECK_THROWS_AS(noise.apply(rgb, {0.1f, tensor<cpu>(ssl::shape{3, 4, 4})}), ssl::shape_error);
  CHECK_THROWS_AS(aug::cutout{}.apply(rgb, {6, 0, 4, 4}), ssl::value_error);
  aug::color_jitter bad{0.4f, 0.4f, 0.4f, 0.6f};
  ssl::rng g(0);
  CHECK_THROWS_AS(bad(rgb, g), ssl::value_error);
}
