// I-JEPA's multi-block masks: block sizes from the scales, the context without the targets,
// rectangular batches (K_c the batch minimum), the token_mask bookkeeping, determinism, replicas,
// bad input.
#include <catch2/catch.hpp>
#include <ssl/pretext/multiblock_mask.hpp>

#include <algorithm>
#include <set>

namespace {
/// The patches of sample n of a list of (batch, K) indices.
std::set<int32_t> row(const std::vector<int32_t>& idx, int64_t n, int64_t K) {
  return std::set<int32_t>(idx.begin() + n * K, idx.begin() + (n + 1) * K);
}
/// Whether the patches form a full h x w rectangle.
bool is_rectangle(const std::set<int32_t>& s, int64_t gw, int64_t h, int64_t w) {
  if (int64_t(s.size()) != h * w) return false;
  const int32_t first = *s.begin();
  const int64_t top = first / gw, left = first % gw;
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j)
      if (!s.count(int32_t((top + i) * gw + left + j))) return false;
  return true;
}
}  // namespace

TEST_CASE("multiblock_mask: 4 target rectangles, a context block without them, on a 14 x 14 grid") {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto m = ssl::multiblock_mask(8, 14, 14, ssl::rng(seed));
    REQUIRE(m.targets.size() == 4u);
    CHECK(m.target_tokens == m.block_h * m.block_w);
    // target area: int(196 s), s in [0.15, 0.2], rounded to h x w with aspect in [0.75, 1.5]
    CHECK(m.target_tokens >= 20);
    CHECK(m.target_tokens <= 48);
    const double aspect = double(m.block_h) / double(m.block_w);
    CHECK(aspect >= 0.5);
    CHECK(aspect <= 2.0);
    // context: area 0.85 .. 1 of the grid, square, shrunk below the grid's side
    CHECK(m.context_h == m.context_w);
    CHECK(m.context_h == 13);
    const auto& c = m.context;
    CHECK(c.batch == 8);
    CHECK(c.tokens == 196);
    CHECK(c.kept > 4);
    for (int64_t n = 0; n < 8; ++n) {
      const auto ctx = row(c.keep, n, c.kept);
      CHECK(int64_t(ctx.size()) == c.kept);  // distinct
      CHECK(std::is_sorted(c.keep.begin() + n * c.kept, c.keep.begin() + (n + 1) * c.kept));  // raster order
      for (const auto& t : m.targets) {
        const auto tg = row(t, n, m.target_tokens);
        CHECK(is_rectangle(tg, 14, m.block_h, m.block_w));
        for (int32_t p : tg) CHECK(ctx.count(p) == 0);  // never relaxed on a roomy grid
      }
      // the context lies in a 13 x 13 block: its rows and columns span at most 13
      int32_t lo_r = 99, hi_r = -1, lo_c = 99, hi_c = -1;
      for (int32_t p : ctx) {
        lo_r = std::min(lo_r, p / 14), hi_r = std::max(hi_r, p / 14);
        lo_c = std::min(lo_c, p % 14), hi_c = std::max(hi_c, p % 14);
      }
      CHECK(hi_r - lo_r < 13);
      CHECK(hi_c - lo_c < 13);
      // token_mask bookkeeping: restore inverts the order, mask flags the dropped patches
      std::vector<int32_t> r(c.restore.begin() + n * 196, c.restore.begin() + (n + 1) * 196);
      std::vector<int32_t> sorted = r;
      std::sort(sorted.begin(), sorted.end());
      for (int32_t i = 0; i < 196; ++i) CHECK(sorted[size_t(i)] == i);
      for (int64_t k = 0; k < c.kept; ++k) CHECK(r[size_t(c.keep[size_t(n * c.kept + k)])] == k);
      int64_t visible = 0;
      for (int64_t l = 0; l < 196; ++l) visible += c.mask[n * 196 + l] == 0.0f;
      CHECK(visible == c.kept);
    }
  }
}

TEST_CASE("multiblock_mask: K_c is the smallest context of the batch; the others are truncated in raster order") {
  // With allow_overlap every context is the whole block (all equal); without, they differ per
  // sample and the batch keeps the minimum: check it against samples drawn one at a time.
  const ssl::rng gen(3);
  const auto all = ssl::multiblock_mask(16, 7, 7, gen);
  for (int64_t n = 0; n < 16; ++n) {
    // sample n alone = replica n of 16 replicas of batch 1, but K_c is the global minimum: equal
    const auto one = ssl::multiblock_mask(1, 7, 7, gen, {}, n, 16);
    CHECK(one.context.kept == all.context.kept);
    CHECK(std::equal(one.context.keep.begin(), one.context.keep.end(), all.context.keep.begin() + n * all.context.kept));
    for (size_t t = 0; t < all.targets.size(); ++t)
      CHECK(std::equal(one.targets[t].begin(), one.targets[t].end(), all.targets[t].begin() + n * all.target_tokens));
  }
  // allow_overlap: every context is its whole block, so nothing is truncated
  const auto whole = ssl::multiblock_mask(16, 7, 7, gen, {.allow_overlap = true});
  CHECK(whole.context.kept == whole.context_h * whole.context_w);
  CHECK(all.context.kept < whole.context.kept);
  CHECK(all.context.kept > 4);  // min_keep
}

TEST_CASE("multiblock_mask: reproducible from the generator; another generator draws other masks") {
  const auto a = ssl::multiblock_mask(6, 7, 7, ssl::rng(5)), b = ssl::multiblock_mask(6, 7, 7, ssl::rng(5));
  CHECK(a.context.keep == b.context.keep);
  CHECK(a.targets == b.targets);
  const auto c = ssl::multiblock_mask(6, 7, 7, ssl::rng(5).fork(1));
  CHECK((c.targets != a.targets || c.context.keep != a.context.keep));
}

TEST_CASE("multiblock_mask: a crowded grid relaxes the last targets' constraint instead of looping") {
  // 4 x 4 grid: context 3 x 3, targets 2 x 2 each; keeping > 6 patches forces overlap with targets.
  const auto m = ssl::multiblock_mask(4, 4, 4, ssl::rng(1),
                                      {.targets = 3, .target_scale_min = 0.25f, .target_scale_max = 0.25f,
                                       .target_aspect_min = 1.0f, .target_aspect_max = 1.0f, .min_keep = 6});
  CHECK(m.target_tokens == 4);
  CHECK(m.context.kept >= 7);
}

TEST_CASE("multiblock_mask: bad options and shapes throw value_error naming the problem") {
  using ssl::value_error;
  const ssl::rng g(0);
  CHECK_THROWS_AS(ssl::multiblock_mask(2, 1, 7, g), value_error);
  CHECK_THROWS_AS(ssl::multiblock_mask(0, 7, 7, g), value_error);
  CHECK_THROWS_AS(ssl::multiblock_mask(2, 7, 7, g, {.targets = 0}), value_error);
  CHECK_THROWS_AS(ssl::multiblock_mask(2, 7, 7, g, {.target_scale_min = 0.3f, .target_scale_max = 0.2f}), value_error);
  CHECK_THROWS_AS(ssl::multiblock_mask(2, 7, 7, g, {.target_aspect_min = 0.0f}), value_error);
  CHECK_THROWS_AS(ssl::multiblock_mask(2, 7, 7, g, {}, 2, 1), value_error);  // rows outside the global batch
  CHECK_THROWS_WITH(ssl::multiblock_mask(2, 7, 7, g, {.min_keep = 40}),
                    Catch::Contains("can never keep more than min_keep = 40"));
}
