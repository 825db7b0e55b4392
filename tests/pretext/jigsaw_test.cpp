#include <catch2/catch.hpp>
#include <set>
#include <ssl/pretext/jigsaw.hpp>

using Catch::Matchers::Contains;
using ssl::pretext::permutation_set;

TEST_CASE("jigsaw permutation sets are distinct, far apart and deterministic") {
  const permutation_set a(100, 7), b(100, 7), c(100, 8);
  REQUIRE(a.size() == 100);
  std::set<ssl::pretext::permutation9> distinct(a.all().begin(), a.all().end());
  CHECK(distinct.size() == 100);
  for (const auto& p : a.all()) {
    std::set<int> values(p.begin(), p.end());
    CHECK(values.size() == 9);
    CHECK(*values.rbegin() == 8);
  }
  int min_d = 9;
  for (int i = 0; i < a.size(); ++i)
    for (int j = i + 1; j < a.size(); ++j) min_d = std::min(min_d, ssl::pretext::hamming(a[i], a[j]));
  CHECK(min_d == a.min_distance());
  // greedy max-min selection keeps permutations far apart (a random set of 100 has pairs at distance <= 4)
  CHECK(min_d >= 6);
  CHECK(a.all() == b.all());
  CHECK(a.all() != c.all());
}

TEST_CASE("jigsaw puzzles shuffle jittered tiles of the 3x3 grid by the labelled permutation") {
  const permutation_set perms(30, 1);
  // each pixel holds its cell index * 100 + its position in the cell, so tiles are recognisable
  const int64_t S = 15, cell = 5, tile = 3;
  ssl::tensor<ssl::cpu> img({2, S, S});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) img.at(c, y, x) = float(c * 1000 + ((y / cell) * 3 + x / cell) * 100 + (y % cell) * 10 + x % cell);
  ssl::rng g(3);
  std::set<int64_t> labels;
  std::set<float> origins;
  for (int trial = 0; trial < 20; ++trial) {
    const auto s = ssl::pretext::jigsaw_puzzle(img, perms, g, tile);
    REQUIRE(s.tiles.shape() == ssl::shape{9, 2, tile, tile});
    REQUIRE(s.label >= 0);
    REQUIRE(s.label < 30);
    labels.insert(s.label);
    for (int64_t i = 0; i < 9; ++i) {
      const float corner = s.tiles.at(i, 0, 0, 0);
      CHECK(int(corner) / 100 == perms[int(s.label)][size_t(i)]);  // tile i comes from cell perm[i]
      CHECK(s.tiles.at(i, 1, tile - 1, tile - 1) == corner + 1000 + 22);  // a contiguous crop, all channels
      origins.insert(corner - float(int(corner) / 100 * 100));
    }
  }
  CHECK(labels.size() > 5);   // labels vary
  CHECK(origins.size() > 3);  // crop offsets are jittered
}

TEST_CASE("jigsaw_batch is deterministic and checks sizes") {
  const permutation_set perms(10, 2);
  ssl::tensor<ssl::cpu> x({3, 1, 12, 12});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i);
  const auto a = ssl::pretext::jigsaw_batch(x, perms, ssl::rng(5), 3);
  const auto b = ssl::pretext::jigsaw_batch(x, perms, ssl::rng(5), 3);
  REQUIRE(a.tiles.shape() == ssl::shape{27, 1, 3, 3});
  CHECK(a.tiles.to_vector() == b.tiles.to_vector());
  CHECK(a.labels == b.labels);
  CHECK_THROWS_WITH(ssl::pretext::jigsaw_batch(x, perms, ssl::rng(5), 5), Contains("tile size must be in [1, 4]"));
  CHECK_THROWS_AS(permutation_set(0, 1), ssl::value_error);
}
