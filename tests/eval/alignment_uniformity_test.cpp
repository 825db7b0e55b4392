#include <catch2/catch.hpp>
#include <ssl/eval/alignment_uniformity.hpp>
#include <support/fixtures.hpp>

#include "eval_support.hpp"

TEST_CASE("alignment and uniformity match the PyTorch reference (Wang & Isola)") {
  ssl_test::fixture f("eval/alignment_uniformity.json");
  const auto x = f.tensor("au_x"), y = f.tensor("au_y");
  const auto r = ssl::eval::alignment_uniformity(x, y);
  CHECK(r.alignment == Approx(f.scalar("au_align2")).epsilon(1e-4));
  CHECK(r.uniformity_x == Approx(f.scalar("au_unif_x")).epsilon(1e-4));
  CHECK(r.uniformity_y == Approx(f.scalar("au_unif_y")).epsilon(1e-4));
  CHECK(r.uniformity == Approx((f.scalar("au_unif_x") + f.scalar("au_unif_y")) / 2).epsilon(1e-4));
  CHECK(ssl::eval::alignment(x, y, 1.0) == Approx(f.scalar("au_align1")).epsilon(1e-4));
  CHECK(ssl::eval::uniformity(x, 1.0) == Approx(f.scalar("au_unif_x_t1")).epsilon(1e-4));
}

TEST_CASE("alignment is 0 for identical views and uniformity is 0 for one repeated point") {
  const auto x = eval_test::randn(16, 5, 1);
  CHECK(ssl::eval::alignment(x, x) == Approx(0).margin(1e-12));
  const auto same = ssl::tensor<ssl::cpu>::from(ssl::shape{3, 2}, {1, 2, 2, 4, 0.5f, 1});
  CHECK(ssl::eval::uniformity(same) == Approx(0).margin(1e-6));
  // two antipodal points: log exp(-2 * 4) = -8
  const auto anti = ssl::tensor<ssl::cpu>::from(ssl::shape{2, 2}, {1, 0, -3, 0});
  CHECK(ssl::eval::uniformity(anti) == Approx(-8).epsilon(1e-6));
}

TEST_CASE("alignment and uniformity reject bad input") {
  CHECK_THROWS_AS(ssl::eval::alignment(eval_test::randn(4, 3, 1), eval_test::randn(4, 2, 1)), ssl::shape_error);
  CHECK_THROWS_WITH(ssl::eval::uniformity(eval_test::randn(1, 3, 1)), Catch::Contains("at least 2 rows"));
  CHECK_THROWS_AS(ssl::eval::uniformity(eval_test::randn(4, 3, 1), -1.0), ssl::value_error);
}
