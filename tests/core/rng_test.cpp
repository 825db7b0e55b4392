#include <catch2/catch.hpp>
#include <cmath>
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
