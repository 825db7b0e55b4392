// Geometric transforms against torchvision's functional ops with fixed parameters
// (fixtures from scripts/fixtures/augment.py).
#include <catch2/catch.hpp>
#include <ssl/augment/affine_resized_crop.hpp>
#include <ssl/augment/horizontal_flip.hpp>
#include <ssl/augment/random_resized_crop.hpp>
#include <ssl/augment/rotation.hpp>

#include "support/fixtures.hpp"

namespace aug = ssl::augment;
using ssl::tensor;
using ssl::cpu;

namespace {
const ssl_test::fixture& geometry() {
  static const ssl_test::fixture f("augment/geometry.json");
  return f;
}
aug::random_resized_crop crop_to(int h, int w, aug::interpolation mode) {
  aug::random_resized_crop c;
  c.size_h = h;
  c.size_w = w;
  c.mode = mode;
  return c;
}
}  // namespace

TEST_CASE("random_resized_crop matches torchvision resized_crop (bilinear, bicubic, nearest)") {
  const auto& f = geometry();
  const tensor<cpu> rgb = f.tensor("rgb"), grey = f.tensor("grey");
  using M = aug::interpolation;
  CHECK(ssl_test::rel_error(crop_to(9, 11, M::bilinear).apply(rgb, {2, 1, 8, 7}), f.tensor("crop_bilinear_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(crop_to(4, 3, M::bilinear).apply(rgb, {1, 2, 9, 8}), f.tensor("crop_bilinear_small_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(crop_to(16, 14, M::bicubic).apply(rgb, {2, 1, 8, 7}), f.tensor("crop_bicubic_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(crop_to(6, 5, M::bicubic).apply(rgb, {0, 0, 12, 10}), f.tensor("crop_bicubic_small_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(crop_to(5, 7, M::bilinear).apply(grey, {3, 2, 9, 9}), f.tensor("crop_bilinear_grey")) <= 1e-4);
  CHECK(ssl_test::rel_error(crop_to(13, 7, M::nearest).apply(grey, {3, 2, 9, 9}), f.tensor("crop_nearest_grey")) <= 1e-4);
}

TEST_CASE("random_resized_crop draws boxes inside the image with the requested area and ratio") {
  aug::random_resized_crop c = crop_to(8, 8, aug::interpolation::bilinear);
  c.scale_lo = 0.2f;
  c.scale_hi = 0.6f;
  const tensor<cpu> img(ssl::shape{3, 40, 50}, 0.5f);  // area 2000
  ssl::rng g(3);
  for (int i = 0; i < 200; ++i) {
    const auto p = c.draw(img, g);
    REQUIRE(p.top >= 0);
    REQUIRE(p.left >= 0);
    REQUIRE(p.top + p.height <= 40);
    REQUIRE(p.left + p.width <= 50);
    const double area = double(p.height) * p.width / 2000.0, ratio = double(p.width) / p.height;
    CHECK(area > 0.17);
    CHECK(area < 0.65);
    CHECK(ratio > 0.7);
    CHECK(ratio < 1.45);
  }
  CHECK(c(img, g).shape() == ssl::shape{3, 8, 8});
  // impossible ratio range: central crop, full width, height round(50 / 20) = 2 (Python rounds half to even)
  c.ratio_lo = c.ratio_hi = 20.0f;
  const auto p = c.draw(img, g);
  CHECK(p.width == 50);
  CHECK(p.height == 2);
  CHECK(p.top == 19);
}

TEST_CASE("affine_resized_crop matches affine_grid + grid_sample") {
  const auto& f = geometry();
  aug::affine_resized_crop c;
  c.size_h = 9;
  c.size_w = 8;
  CHECK(ssl_test::rel_error(c.apply(f.tensor("rgb"), {0.7f, 0.55f, 0.2f, -0.3f}), f.tensor("affine_crop_rgb")) <= 1e-4);
  c.size_h = c.size_w = 10;
  CHECK(ssl_test::rel_error(c.apply(f.tensor("grey"), {1.0f, 0.8f, 0.0f, 0.15f}), f.tensor("affine_crop_grey")) <= 1e-4);
  // drawn crops stay inside the image: side fractions <= 1, centre within 1 - fraction
  ssl::rng g(9);
  for (int i = 0; i < 200; ++i) {
    const auto p = c.draw(f.tensor("grey"), g);
    REQUIRE(p.frac_w <= 1.0f);
    REQUIRE(p.frac_h <= 1.0f);
    REQUIRE(std::abs(p.centre_x) <= 1.0f - p.frac_w + 1e-6f);
    REQUIRE(std::abs(p.centre_y) <= 1.0f - p.frac_h + 1e-6f);
    CHECK(p.frac_w * p.frac_h >= 0.3f * 0.99f - 1e-6f);  // area >= scale_lo unless clamped to 1 ...
  }
}

TEST_CASE("horizontal_flip matches torchvision hflip and respects p") {
  const auto& f = geometry();
  aug::horizontal_flip flip{1.0f};
  CHECK(ssl_test::rel_error(flip.apply(f.tensor("rgb"), {true}), f.tensor("hflip_rgb")) <= 1e-6);
  CHECK(ssl_test::rel_error(flip.apply(f.tensor("rgb"), {false}), f.tensor("rgb")) == 0.0);
  ssl::rng g(1);
  aug::horizontal_flip half{0.5f};
  int flipped = 0;
  for (int i = 0; i < 400; ++i) flipped += half.draw(f.tensor("rgb"), g).flip;
  CHECK(flipped == Approx(200).margin(40));
}

TEST_CASE("rotation matches torchvision rotate (bilinear and nearest, zero fill)") {
  const auto& f = geometry();
  aug::rotation r;
  r.mode = aug::interpolation::bilinear;
  CHECK(ssl_test::rel_error(r.apply(f.tensor("rgb"), {33.0f}), f.tensor("rotate_33_bilinear_rgb")) <= 1e-4);
  CHECK(ssl_test::rel_error(r.apply(f.tensor("grey"), {71.0f}), f.tensor("rotate_71_bilinear_grey")) <= 1e-4);
  r.mode = aug::interpolation::nearest;
  CHECK(ssl_test::rel_error(r.apply(f.tensor("rgb"), {-50.0f}), f.tensor("rotate_m50_nearest_rgb")) <= 1e-4);
}

TEST_CASE("right_angle_rotation matches torch.rot90") {
  const auto& f = geometry();
  aug::right_angle_rotation r;
  for (int k = 1; k <= 3; ++k)
    CHECK(ssl_test::rel_error(r.apply(f.tensor("rgb"), {k}), f.tensor("rot90_" + std::to_string(k) + "_rgb")) == 0.0);
  CHECK(ssl_test::rel_error(r.apply(f.tensor("rgb"), {4}), f.tensor("rgb")) == 0.0);
}

TEST_CASE("geometric transforms reject bad input with typed errors") {
  const tensor<cpu> flat(ssl::shape{12, 10}, 0.5f), img(ssl::shape{3, 12, 10}, 0.5f);
  aug::random_resized_crop c = crop_to(4, 4, aug::interpolation::bilinear);
  ssl::rng g(0);
  CHECK_THROWS_AS(c(flat, g), ssl::shape_error);
  CHECK_THROWS_WITH(c(flat, g), Catch::Contains("(C, H, W)") && Catch::Contains("(12, 10)"));
  CHECK_THROWS_AS(c.apply(img, {5, 0, 8, 4}), ssl::value_error);  // box leaves the image
  CHECK_THROWS_WITH(c.apply(img, {5, 0, 8, 4}), Catch::Contains("12x10") && Catch::Contains("top 5"));
  c.scale_lo = 0.9f;
  c.scale_hi = 0.1f;
  CHECK_THROWS_AS(c(img, g), ssl::value_error);
  CHECK_THROWS_AS(aug::rotation{}(flat, g), ssl::shape_error);
  CHECK_THROWS_AS(aug::horizontal_flip{}(tensor<cpu>(ssl::shape{0, 4, 4}), g), ssl::shape_error);
}
