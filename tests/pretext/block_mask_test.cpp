// Block-wise patch masks (BEiT / iBOT / DINOv2): counts, block shape, determinism, DINOv2's
// per-batch ratio spread, bad input.
#include <catch2/catch.hpp>
#include <ssl/pretext/block_mask.hpp>

#include <algorithm>
#include <set>

namespace {
int64_t count(const std::vector<uint8_t>& m) { return std::count(m.begin(), m.end(), uint8_t(1)); }
}  // namespace

TEST_CASE("block_mask hides at most the target, in blocks, and reaches it on a roomy grid") {
  int reached = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    ssl::rng g(seed);
    const int64_t target = 4 + int64_t(seed % 60);
    const auto m = ssl::block_mask(14, 14, target, g);
    CHECK(m.size() == 196u);
    CHECK(count(m) <= target);
    reached += count(m) >= target - 3;
    // blocks, not scattered patches: only the last blocks, drawn when fewer than min_patches = 4
    // remain to hide, may be 1 x 1, so at most 3 hidden patches lack a hidden 4-neighbour
    int64_t isolated = 0;
    for (int64_t i = 0; i < 14; ++i)
      for (int64_t j = 0; j < 14; ++j) {
        if (!m[size_t(i * 14 + j)]) continue;
        const bool nb = (i > 0 && m[size_t((i - 1) * 14 + j)]) || (i < 13 && m[size_t((i + 1) * 14 + j)]) ||
                        (j > 0 && m[size_t(i * 14 + j - 1)]) || (j < 13 && m[size_t(i * 14 + j + 1)]);
        isolated += !nb;
      }
    CHECK(isolated <= 3);
  }
  CHECK(reached > 180);
  ssl::rng g(1);
  CHECK(count(ssl::block_mask(7, 7, 0, g)) == 0);
}

TEST_CASE("ibot_masks: DINOv2's collate (half the images masked, ratios spread over [0.1, 0.5]), reproducible") {
  const ssl::ibot_mask_options o{};
  const ssl::patch_mask pm = ssl::ibot_masks(64, 14, 14, o, ssl::rng(9));
  CHECK(pm.batch == 64);
  CHECK(pm.tokens == 196);
  int64_t masked = 0, total = 0, most = 0;
  for (int64_t n = 0; n < 64; ++n) {
    const int64_t c = pm.hidden_in(n);
    masked += c > 0;
    total += c;
    most = std::max(most, c);
    CHECK(c <= int64_t(0.5 * 196));
  }
  CHECK(masked <= 32);
  CHECK(masked >= 28);  // a sample's blocks may fail to fit only rarely
  CHECK(most > int64_t(0.4 * 196));
  CHECK(double(total) / 32 / 196 == Approx(0.3).margin(0.06));  // the mean ratio of the masked half
  // same rng, same masks; another rng, other masks
  CHECK(ssl::ibot_masks(64, 14, 14, o, ssl::rng(9)).hidden == pm.hidden);
  CHECK(ssl::ibot_masks(64, 14, 14, o, ssl::rng(10)).hidden != pm.hidden);
  // probability 1 masks every image, 0 none
  const auto all = ssl::ibot_masks(8, 7, 7, {.probability = 1.0f, .ratio_min = 0.3f, .ratio_max = 0.5f}, ssl::rng(2));
  for (int64_t n = 0; n < 8; ++n) CHECK(all.hidden_in(n) > 0);
  CHECK(ssl::ibot_masks(8, 7, 7, {.probability = 0.0f}, ssl::rng(2)).hidden_count() == 0);
}

TEST_CASE("block masks reject bad options with typed errors") {
  ssl::rng g(0);
  CHECK_THROWS_AS(ssl::block_mask(4, 4, 17, g), ssl::value_error);
  CHECK_THROWS_AS(ssl::block_mask(0, 4, 0, g), ssl::value_error);
  CHECK_THROWS_AS(ssl::block_mask(4, 4, 2, g, {.min_patches = 0}), ssl::value_error);
  CHECK_THROWS_AS(ssl::block_mask(4, 4, 2, g, {.min_aspect = 1.5f}), ssl::value_error);
  CHECK_THROWS_AS(ssl::ibot_masks(4, 7, 7, {.probability = 1.5f}, g), ssl::value_error);
  CHECK_THROWS_AS(ssl::ibot_masks(4, 7, 7, {.ratio_min = 0.6f, .ratio_max = 0.5f}, g), ssl::value_error);
  CHECK_THROWS_AS(ssl::ibot_masks(0, 7, 7, {}, g), ssl::value_error);
}
