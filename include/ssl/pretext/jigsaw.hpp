#pragma once
// Jigsaw puzzles (Noroozi & Favaro 2016). An image is cut into a 3x3 grid of cells; from each
// cell a tile x tile crop is taken at a random offset (the gap between tiles and the jitter
// that stop the network from matching edges); the tiles are shuffled by one permutation of a
// fixed set and the label is that permutation's index.
//
//   permutation_set(count, seed): `count` permutations of 0..8 chosen greedily from all 9! so
//   that each new one maximises its minimum Hamming distance to those already chosen (the first
//   is seeded; ties go to the first in a seeded random order). Deterministic from (count, seed),
//   serial, about a millisecond per permutation.
//   jigsaw_puzzle(img (C, H, W), perms, g, tile): tiles (9, C, tile, tile) with
//     tiles[i] = crop of grid cell perms[label][i] (cells numbered row-major), label drawn from g.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/rng.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::pretext {

using permutation9 = std::array<uint8_t, 9>;

namespace detail {
/// A permutation of 0..8 packed as nine 4-bit digits.
inline uint64_t pack(const permutation9& p) {
  uint64_t v = 0;
  for (int i = 0; i < 9; ++i) v |= uint64_t(p[size_t(i)]) << (4 * i);
  return v;
}
/// The index-th permutation of 0..8 in lexicographic order (decoded from its Lehmer code).
inline permutation9 nth_permutation(int64_t index) {
  constexpr std::array<int64_t, 9> factorial{40320, 5040, 720, 120, 24, 6, 2, 1, 1};
  std::array<uint8_t, 9> left{0, 1, 2, 3, 4, 5, 6, 7, 8};
  int remaining = 9;
  permutation9 p{};
  for (size_t i = 0; i < 9; ++i) {
    const int digit = int(index / factorial[i]);
    index %= factorial[i];
    p[i] = left[size_t(digit)];
    for (int j = digit; j + 1 < remaining; ++j) left[size_t(j)] = left[size_t(j + 1)];
    --remaining;
  }
  return p;
}
inline permutation9 unpack(uint64_t v) {
  permutation9 p;
  for (size_t i = 0; i < 9; ++i) p[i] = uint8_t((v >> (4 * i)) & 0xF);
  return p;
}
/// Number of positions where two packed permutations differ.
inline int packed_hamming(uint64_t a, uint64_t b) {
  uint64_t x = a ^ b;
  x = (x | (x >> 1) | (x >> 2) | (x >> 3)) & 0x111111111ull;  // one bit per differing digit
  return std::popcount(x);
}
}  // namespace detail

/// Hamming distance: number of positions where p and q differ.
inline int hamming(const permutation9& p, const permutation9& q) {
  int d = 0;
  for (size_t i = 0; i < 9; ++i) d += p[i] != q[i];
  return d;
}

class permutation_set {
 public:
  permutation_set(int count, uint64_t seed) : seed_(seed) {
    check(count >= 1 && count <= 362880, "permutation_set: count must be in [1, 9!], got ", count);
    // Candidates in a seeded random order: the first maximiser in this order wins ties.
    constexpr int64_t n = 362880;
    std::vector<std::pair<uint64_t, uint32_t>> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = {mix64(seed ^ mix64(uint64_t(i) + 0x5bd1e995u)), uint32_t(i)};
    std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    std::vector<uint64_t> packed(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) packed[size_t(i)] = detail::pack(detail::nth_permutation(order[size_t(i)].second));
    // min_dist[i]: distance of candidate i to the chosen set (a chosen one is at 0 from itself,
    // so it is never picked again while unchosen candidates, all at >= 2, remain).
    std::vector<uint8_t> min_dist(static_cast<size_t>(n), uint8_t(10));
    int64_t next = 0;
    for (int k = 0; k < count; ++k) {
      const uint64_t chosen = packed[size_t(next)];
      perms_.push_back(detail::unpack(chosen));
      int best_d = -1;
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t d = std::min(min_dist[size_t(i)], uint8_t(detail::packed_hamming(packed[size_t(i)], chosen)));
        min_dist[size_t(i)] = d;
        if (d > best_d) best_d = d, next = i;
      }
    }
    min_distance_ = 9;
    for (size_t i = 0; i < perms_.size(); ++i)
      for (size_t j = i + 1; j < perms_.size(); ++j) min_distance_ = std::min(min_distance_, hamming(perms_[i], perms_[j]));
  }

  int size() const { return int(perms_.size()); }
  const permutation9& operator[](int i) const {
    check(i >= 0 && i < size(), "permutation_set: index ", i, " out of range [0, ", size(), ")");
    return perms_[size_t(i)];
  }
  const std::vector<permutation9>& all() const { return perms_; }
  /// Smallest Hamming distance between two permutations of the set (9 for a single one).
  int min_distance() const { return min_distance_; }
  uint64_t seed() const { return seed_; }

 private:
  std::vector<permutation9> perms_;
  int min_distance_ = 9;
  uint64_t seed_;
};

struct jigsaw_sample {
  tensor<cpu> tiles;  // (9, C, tile, tile)
  int64_t label;      // index into the permutation set
};

namespace detail {
inline void check_jigsaw_sizes(int64_t H, int64_t W, int64_t tile, const char* what) {
  const int64_t ch = H / 3, cw = W / 3;
  check<shape_error>(tile >= 1 && tile <= ch && tile <= cw, what, ": tile size must be in [1, ", std::min(ch, cw),
                     "] for an image of ", H, "x", W, " (cells of ", ch, "x", cw, "), got ", tile);
}
/// Draws a label and the crop offsets from g, writes the 9 shuffled tiles of img (C, H, W) to out.
inline int64_t cut_puzzle(const float* img, int64_t C, int64_t H, int64_t W, const permutation_set& perms, rng& g,
                          int64_t tile, float* out) {
  const int64_t ch = H / 3, cw = W / 3;
  const int64_t label = int64_t(g.below(uint32_t(perms.size())));
  const permutation9& p = perms[int(label)];
  std::array<int64_t, 9> oy, ox;  // crop origin in each grid cell (row-major cells)
  for (size_t cell = 0; cell < 9; ++cell) {
    oy[cell] = int64_t(cell / 3) * ch + int64_t(g.below(uint32_t(ch - tile + 1)));
    ox[cell] = int64_t(cell % 3) * cw + int64_t(g.below(uint32_t(cw - tile + 1)));
  }
  for (int64_t i = 0; i < 9; ++i) {
    const size_t cell = p[size_t(i)];
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < tile; ++y) {
        const float* src = img + (c * H + oy[cell] + y) * W + ox[cell];
        std::copy(src, src + tile, out + ((i * C + c) * tile + y) * tile);
      }
  }
  return label;
}
}  // namespace detail

/// One puzzle from img (C, H, W): cells of (H/3, W/3), a tile x tile crop at a random offset in
/// each cell, tiles shuffled by a random permutation of `perms`.
inline jigsaw_sample jigsaw_puzzle(const tensor<cpu>& img, const permutation_set& perms, rng& g, int64_t tile) {
  expect_rank(img, 3, "jigsaw_puzzle image (C, H, W)");
  const int64_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  detail::check_jigsaw_sizes(H, W, tile, "jigsaw_puzzle");
  jigsaw_sample s{tensor<cpu>(shape{9, C, tile, tile}), 0};
  s.label = detail::cut_puzzle(img.data(), C, H, W, perms, g, tile, s.tiles.data());
  return s;
}

struct jigsaw_batch_result {
  tensor<cpu> tiles;            // (9N, C, tile, tile): the 9 tiles of image n at rows 9n .. 9n+8
  std::vector<int64_t> labels;  // N permutation indices
};

/// Puzzles for a batch x (N, C, H, W); image n uses the stream g.fork(first_sample + n), so the
/// result does not depend on the thread count, and a data-parallel replica holding images
/// [first_sample, first_sample + N) of a global batch draws their puzzles of the global draw.
inline jigsaw_batch_result jigsaw_batch(const tensor<cpu>& x, const permutation_set& perms, const rng& g, int64_t tile,
                                        int64_t first_sample = 0) {
  expect_rank(x, 4, "jigsaw_batch images (N, C, H, W)");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  detail::check_jigsaw_sizes(H, W, tile, "jigsaw_batch");
  jigsaw_batch_result r{tensor<cpu>(shape{9 * N, C, tile, tile}), std::vector<int64_t>(size_t(N))};
  const int64_t per = 9 * C * tile * tile;
  parallel_for(0, N, [&](int64_t n) {
    rng gn = g.fork(uint64_t(first_sample + n));
    r.labels[size_t(n)] = detail::cut_puzzle(x.data() + n * C * H * W, C, H, W, perms, gn, tile, r.tiles.data() + n * per);
  });
  return r;
}

}  // namespace ssl::pretext
