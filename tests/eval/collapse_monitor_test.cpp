#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/eval/collapse_monitor.hpp>

#include "eval_support.hpp"

TEST_CASE("collapse monitor flags constant embeddings and passes random ones") {
  const int64_t n = 512, d = 64;
  const auto healthy = ssl::eval::embedding_collapse(eval_test::randn(n, d, 1));
  CHECK_FALSE(healthy.collapsed);
  CHECK(healthy.reference == Approx(1.0 / 8.0));
  CHECK(healthy.ratio == Approx(1.0).margin(0.05));  // isotropic Gaussian: std ~ 1/sqrt(d)
  CHECK(healthy.message.find("ok") != std::string::npos);
  CHECK_NOTHROW(ssl::eval::throw_if_collapsed(healthy));

  // every row the same direction (different norms): std 0 after normalisation
  ssl::tensor<ssl::cpu> constant(ssl::shape{n, d});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) constant[i * d + j] = float(1 + i % 3) * float(j + 1);
  const auto dead = ssl::eval::embedding_collapse(constant);
  CHECK(dead.collapsed);
  CHECK(dead.value == Approx(0).margin(1e-6));
  CHECK(dead.message.find("COLLAPSED") != std::string::npos);
  CHECK_THROWS_AS(ssl::eval::throw_if_collapsed(dead), ssl::numeric_error);

  // nearly collapsed: a shared direction plus 1% noise
  auto near = eval_test::randn(n, d, 2);
  for (int64_t i = 0; i < near.numel(); ++i) near[i] = 1.0f + 0.01f * near[i];
  CHECK(ssl::eval::embedding_collapse(near).collapsed);
  CHECK_FALSE(ssl::eval::embedding_collapse(near, 0.005).collapsed);  // ratio ~0.01
}

TEST_CASE("DINO collapse check: loss stuck at ln K") {
  const double lnk = std::log(4096.0);
  CHECK(ssl::eval::dino_loss_collapse(lnk, 4096).collapsed);
  CHECK(ssl::eval::dino_loss_collapse(lnk * 0.995, 4096).collapsed);
  CHECK_FALSE(ssl::eval::dino_loss_collapse(lnk * 0.8, 4096).collapsed);
  CHECK(ssl::eval::dino_loss_collapse(lnk, 4096).reference == Approx(lnk));
  CHECK_THROWS_AS(ssl::eval::dino_loss_collapse(NAN, 4096), ssl::numeric_error);
  CHECK_THROWS_WITH(ssl::eval::dino_loss_collapse(1.0, 1), Catch::Contains("got 1"));
  CHECK_THROWS_AS(ssl::eval::embedding_collapse(eval_test::randn(1, 4, 1)), ssl::shape_error);
}
