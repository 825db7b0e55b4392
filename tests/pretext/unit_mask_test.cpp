// unit_mask (SimMIM's MaskGenerator): ceil(U ratio) whole units hidden per sample, units cut at the
// grid's edge, reproducible per sample (a replica's slice draws the global batch's rows), bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>
#include <ssl/pretext/unit_mask.hpp>

using ssl::patch_mask;
using ssl::unit_mask;

namespace {
/// The hidden units of sample n, each checked to be hidden whole (every patch of it) or not at all.
std::set<int64_t> hidden_units(const patch_mask& m, int64_t n, int64_t gh, int64_t gw, int64_t u) {
  std::set<int64_t> units;
  const int64_t uw = ssl::unit_count(gw, u);
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t c = 0; c < gw; ++c) {
      const int64_t unit = (r / u) * uw + c / u;
      const bool h = m.hidden[size_t(n * gh * gw + r * gw + c)] != 0;
      const bool first = r % u == 0 && c % u == 0;  // the unit's top-left patch
      const bool unit_hidden = m.hidden[size_t(n * gh * gw + (r / u * u) * gw + c / u * u)] != 0;
      CHECK(h == unit_hidden);  // a unit is hidden whole
      if (h && first) units.insert(unit);
    }
  return units;
}
}  // namespace

TEST_CASE("unit_mask hides ceil(U ratio) whole units of every sample") {
  struct cfg {
    int64_t gh, gw, unit;
    float ratio;
    int64_t hidden_units;  // ceil(U ratio)
  };
  // 14 x 14 (ViT-B/16 at 224, unit 2): 49 units, ceil(29.4) = 30; 7 x 7 (ViT-T/4 at 28): 16 units
  // of which the last row / column are one patch wide, ceil(9.6) = 10; 6 x 6 by 3: 4 units, 0.5 -> 2
  for (const cfg c : {cfg{14, 14, 2, 0.6f, 30}, cfg{7, 7, 2, 0.6f, 10}, cfg{6, 6, 3, 0.5f, 2}, cfg{5, 3, 1, 0.6f, 9}}) {
    const auto m = unit_mask(5, c.gh, c.gw, {.unit = c.unit, .ratio = c.ratio}, ssl::rng(3));
    CHECK(m.batch == 5);
    CHECK(m.tokens == c.gh * c.gw);
    std::set<std::string> distinct;  // each sample's flags as a string of '0' / '1'
    for (int64_t n = 0; n < 5; ++n) {
      CHECK(int64_t(hidden_units(m, n, c.gh, c.gw, c.unit).size()) == c.hidden_units);
      std::string flags;
      for (int64_t l = 0; l < m.tokens; ++l) flags += m.hidden[size_t(n * m.tokens + l)] ? '1' : '0';
      distinct.insert(flags);
    }
    CHECK(distinct.size() >= 4);  // samples draw their own units
  }
  CHECK(ssl::hidden_unit_count(5, 0.6f) == 3);  // 5 x 0.6 = 3 exactly, not 4 from 0.6f's rounding
  CHECK(ssl::hidden_unit_count(16, 0.6f) == 10);
  CHECK(ssl::hidden_unit_count(4, 0.99f) == 4);
  CHECK(ssl::hidden_unit_count(100, 0.001f) == 1);
}

TEST_CASE("unit_mask: edge units are cut, so patch counts vary while unit counts do not") {
  // 7 x 7 grid, units of 2: the corner unit is one patch, edge units two, inner units four
  const auto m = unit_mask(64, 7, 7, {.unit = 2, .ratio = 0.6f}, ssl::rng(8));
  std::set<int64_t> patch_counts;
  for (int64_t n = 0; n < 64; ++n) {
    patch_counts.insert(m.hidden_in(n));
    CHECK(m.hidden_in(n) <= 10 * 4);
    CHECK(m.hidden_in(n) >= 10 * 4 - 3 - 2 * 6);  // at most the corner and 6 edge units
  }
  CHECK(patch_counts.size() > 1);
  // every unit (corner included) is drawn over 64 samples
  std::set<int64_t> seen;
  for (int64_t n = 0; n < 64; ++n)
    for (int64_t u : hidden_units(m, n, 7, 7, 2)) seen.insert(u);
  CHECK(seen.size() == 16);
}

TEST_CASE("unit_mask is reproducible per sample: a slice of the batch draws the same rows") {
  const ssl::rng gen(5, 77);
  const auto all = unit_mask(9, 7, 7, {}, gen);
  const auto again = unit_mask(9, 7, 7, {}, gen);
  CHECK(all.hidden == again.hidden);
  const auto part = unit_mask(3, 7, 7, {}, gen, /*first_sample=*/6);
  CHECK(std::equal(part.hidden.begin(), part.hidden.end(), all.hidden.begin() + 6 * 49));
  const auto other = unit_mask(9, 7, 7, {}, ssl::rng(6, 77));
  CHECK(other.hidden != all.hidden);
}

TEST_CASE("unit_mask: bad options throw value errors naming what was expected") {
  CHECK_THROWS_AS(unit_mask(2, 4, 4, {.unit = 2, .ratio = 0.0f}, ssl::rng(1)), ssl::value_error);
  CHECK_THROWS_AS(unit_mask(2, 4, 4, {.unit = 2, .ratio = 1.0f}, ssl::rng(1)), ssl::value_error);
  CHECK_THROWS_AS(unit_mask(2, 4, 4, {.unit = 0, .ratio = 0.5f}, ssl::rng(1)), ssl::value_error);
  CHECK_THROWS_AS(unit_mask(0, 4, 4, {}, ssl::rng(1)), ssl::value_error);
  try {
    unit_mask(2, 4, 4, {.unit = 2, .ratio = std::nanf("")}, ssl::rng(1));
    FAIL("expected ssl::value_error");
  } catch (const ssl::value_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("(0, 1)"));
  }
}
