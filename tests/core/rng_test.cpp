#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <ssl/core/rng.hpp>
#include <ssl/core/parallel.hpp>
#include <vector>

TEST_CASE("philox matches the Random123 known-answer vector") {
  // Random123 kat_vectors: philox4x32_10, ctr = key = 0
  auto r = ssl::philox4x32({0, 0, 0, 0}, {0, 0});
  CHECK(r[0] == 0x6627e8d5u);
  CHECK(r[1] == 0xe169c58du);
  CHECK(r[2] == 0xbc57ac4cu);
  CHECK(r[3] == 0x9b00dbd8u);
}

TEST_CASE("rng streams are reproducible and independent") {
  ssl::rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint32_t x = a.next_u32();
    CHECK(x == b.next_u32());
    differs |= x != c.next_u32();
  }
  CHECK(differs);
  CHECK(ssl::rng(7).fork(3).next_u32() == ssl::rng(7).fork(3).next_u32());
  CHECK(ssl::rng(7).fork(3).next_u32() != ssl::rng(7).fork(4).next_u32());
}

TEST_CASE("rng distributions have the right moments") {
  ssl::rng g(1);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  int counts[5] = {};
  for (int i = 0; i < n; ++i) {
    const float u = g.uniform();
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    su += u;
    const float z = g.normal();
    REQUIRE(std::isfinite(z));
    sn += z;
    sn2 += double(z) * z;
    counts[g.below(5)]++;
  }
  CHECK(su / n == Approx(0.5).margin(0.005));
  CHECK(sn / n == Approx(0.0).margin(0.01));
  CHECK(sn2 / n == Approx(1.0).margin(0.02));
  for (int c : counts) CHECK(c == Approx(n / 5).epsilon(0.03));
}

TEST_CASE("per-index draws do not depend on the thread count") {
  auto draw = [](int threads) {
    ssl::set_num_threads(threads);
    std::vector<float> v(1000);
    ssl::parallel_for(0, 1000, [&](int64_t i) { v[i] = ssl::rng(5).fork(uint64_t(i)).normal(); });
    return v;
  };
  const auto one = draw(1), two = draw(2);
  ssl::set_num_threads(2);
  CHECK(one == two);
}

TEST_CASE("gamma and beta draws have the right mean and variance") {
  // 20k draws: sample mean and variance within 4 standard errors; for a distribution of
  // variance s2 and excess kurtosis k, SE(mean) = sqrt(s2 / n), SE(variance) ~ s2 sqrt((2 + k) / n).
  const int n = 20000;
  auto moments_ok = [&](auto&& draw, double mean, double var, double kurt) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
      const double x = draw();
      REQUIRE(std::isfinite(x));
      s += x;
      s2 += x * x;
    }
    const double m = s / n, v = s2 / n - m * m;
    INFO("mean " << m << " (expected " << mean << "), variance " << v << " (expected " << var << ")");
    CHECK(std::abs(m - mean) <= 4 * std::sqrt(var / n));
    CHECK(std::abs(v - var) <= 4 * var * std::sqrt((2 + kurt) / n));
  };
  ssl::rng g(12);
  for (float a : {0.2f, 0.8f, 1.0f, 3.0f}) {
    INFO("shape " << a);
    // Gamma(a, 1): mean a, variance a, excess kurtosis 6 / a
    moments_ok([&] { return double(g.gamma(a)); }, a, a, 6.0 / a);
    // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)), excess kurtosis -6 / (2a + 3)
    moments_ok([&] { return double(g.beta(a, a)); }, 0.5, 1.0 / (4 * (2 * a + 1)), -6.0 / (2 * a + 3));
  }
  // Beta(a, b) = (2, 5): mean a / (a + b), variance ab / ((a + b)^2 (a + b + 1)),
  // excess kurtosis 6 [(a - b)^2 (a + b + 1) - ab (a + b + 2)] / [ab (a + b + 2)(a + b + 3)]
  const double a = 2, b = 5, n2 = a + b;
  const double kurt = 6 * ((a - b) * (a - b) * (n2 + 1) - a * b * (n2 + 2)) / (a * b * (n2 + 2) * (n2 + 3));
  moments_ok([&] { return double(g.beta(2.0f, 5.0f)); }, a / n2, a * b / (n2 * n2 * (n2 + 1)), kurt);
  // shapes far below 1: the Gamma draws underflow, the Beta draw stays in [0, 1]
  for (int i = 0; i < 1000; ++i) {
    const float x = g.beta(0.01f, 0.01f);
    REQUIRE(x >= 0.0f);
    REQUIRE(x <= 1.0f);
    REQUIRE(g.gamma(0.05f) >= 0.0f);
  }
  // reproducible from the seed
  ssl::rng a1(3), a2(3);
  for (int i = 0; i < 10; ++i) CHECK(a1.beta(0.8f, 0.8f) == a2.beta(0.8f, 0.8f));
  CHECK_THROWS_AS(g.gamma(0.0f), ssl::value_error);
  CHECK_THROWS_AS(g.beta(1.0f, -1.0f), ssl::value_error);
  CHECK_THROWS_WITH(g.beta(std::numeric_limits<float>::infinity(), 1.0f), Catch::Contains("shape > 0"));
}
