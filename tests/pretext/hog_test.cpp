#include <catch2/catch.hpp>
#include <ssl/pretext/hog.hpp>

#include "support/fixtures.hpp"

TEST_CASE("hog: matches the torch reference (4x4 cells = patches, 2x2 cells per patch, RGB with 6 bins)") {
  ssl_test::fixture fx("dino/hog.json");
  const auto imgs = fx.tensor("images");
  const auto a = ssl::pretext::hog(imgs, {.cell = 4, .patch = 4, .bins = 9});
  REQUIRE(a.shape() == ssl::shape{2, 9, 9});
  CHECK(ssl_test::rel_error(a, fx.tensor("hog_c4_p4")) <= 1e-4);
  const auto b = ssl::pretext::hog(imgs, {.cell = 2, .patch = 4, .bins = 9});
  REQUIRE(b.shape() == ssl::shape{2, 9, 36});
  CHECK(ssl_test::rel_error(b, fx.tensor("hog_c2_p4")) <= 1e-4);
  const auto c = ssl::pretext::hog(fx.tensor("rgb"), {.cell = 4, .patch = 8, .bins = 6});
  REQUIRE(c.shape() == ssl::shape{1, 1, 3 * 4 * 6});
  CHECK(ssl_test::rel_error(c, fx.tensor("rgb_c4_p8")) <= 1e-4);
  CHECK(ssl::pretext::hog_dim(3, {.cell = 4, .patch = 8, .bins = 6}) == 72);
}

TEST_CASE("hog: a vertical edge fills the horizontal-gradient bins, patches are unit vectors") {
  // left half 0, right half 1: gx > 0 at the edge, gy = 0 -> angle 0, split between bins 0 and 8
  ssl::tensor<ssl::cpu> img(ssl::shape{1, 1, 8, 8}, 0.0f);
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 4; x < 8; ++x) img[y * 8 + x] = 1.0f;
  const auto h = ssl::pretext::hog(img, {.cell = 4, .patch = 4, .bins = 9});
  REQUIRE(h.shape() == ssl::shape{1, 4, 9});
  for (int64_t p = 0; p < 4; ++p) {
    const float* v = h.data() + p * 9;
    double ss = 0;
    for (int b = 0; b < 9; ++b) ss += double(v[b]) * v[b];
    CHECK(ss == Approx(1.0).epsilon(1e-5));
    CHECK(v[0] == Approx(v[8]));  // angle 0 lies half-way between the centres of bins 8 and 0
    for (int b = 1; b < 8; ++b) CHECK(v[b] == 0.0f);
  }
  // a flat image has no gradients: all-zero targets, not NaN
  const auto z = ssl::pretext::hog(ssl::tensor<ssl::cpu>(ssl::shape{1, 1, 8, 8}, 0.3f));
  for (int64_t i = 0; i < z.numel(); ++i) REQUIRE(z[i] == 0.0f);
}

TEST_CASE("hog: bad sizes throw typed errors naming what was expected") {
  ssl::tensor<ssl::cpu> img(ssl::shape{1, 1, 10, 8}, 0.0f);
  try {
    ssl::pretext::hog(img, {.cell = 4, .patch = 4});
    FAIL("expected shape_error");
  } catch (const ssl::shape_error& e) {
    const std::string m = e.what();
    CHECK(m.find("multiples of the patch size 4") != std::string::npos);
    CHECK(m.find("(1, 1, 10, 8)") != std::string::npos);
  }
  CHECK_THROWS_AS(ssl::pretext::hog(ssl::tensor<ssl::cpu>(ssl::shape{1, 1, 8, 8}, 0.0f), {.cell = 3, .patch = 4}),
                  ssl::value_error);
}
