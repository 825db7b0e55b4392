#pragma once
// Register-tile product, the inner kernel of the CPU convolution:
//   acc[r][v] = Σ_{t < T} a(r, t) · b(t)[16 v .. 16 v + 15],   r < MR, v < 2   (an MR x 32 tile)
// a(r, t) is a scalar (broadcast), b(t) points at 32 contiguous floats. The caller says where
// both come from (a packed panel, rows at an offset table, strided rows) and what happens to the
// tile (stored, added). Written with GCC vector extensions: one vf16 is one AVX-512 register
// (two AVX2 registers, or four SSE ones, on machines without AVX-512).
#include <cstdint>
#include <cstring>

namespace ssl::ops::detail {

using vf16 = float __attribute__((vector_size(64)));

/// Columns of one tile (two vectors).
constexpr int64_t tile_cols = 32;

inline vf16 load16(const float* p) {
  vf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, vf16 v) { std::memcpy(p, &v, sizeof v); }

template <int MR, class AScalar, class BRow>
[[gnu::always_inline]] inline void tile_product(int64_t T, AScalar a, BRow b, vf16 (&acc)[MR][2]) {
  for (auto& row : acc) row[0] = row[1] = vf16{};
  for (int64_t t = 0; t < T; ++t) {
    const float* bt = b(t);
    const vf16 b0 = load16(bt), b1 = load16(bt + 16);
    for (int r = 0; r < MR; ++r) {
      const float s = a(r, t);
      acc[r][0] += s * b0;
      acc[r][1] += s * b1;
    }
  }
}

/// Calls f.template operator()<MR>(r0) over [0, n) in blocks of 12 rows (the tile that fills
/// the AVX-512 register file: 24 accumulators), then one block of 8 and of 4, then single rows.
template <class F>
inline void for_row_blocks(int64_t n, F&& f) {
  int64_t r = 0;
  for (; r + 12 <= n; r += 12) f.template operator()<12>(r);
  if (r + 8 <= n) {
    f.template operator()<8>(r);
    r += 8;
  }
  if (r + 4 <= n) {
    f.template operator()<4>(r);
    r += 4;
  }
  for (; r < n; ++r) f.template operator()<1>(r);
}

/// Packs rows [0, n) of a (n, T) operand, element elem(row, t), into the panels for_row_blocks
/// visits: the block of MR rows starting at r0 is at dst + r0 T, element (r0 + r, t) at [t MR + r].
template <class Elem>
inline void pack_row_panels(int64_t n, int64_t T, float* dst, Elem elem) {
  for_row_blocks(n, [&]<int MR>(int64_t r0) {
    float* panel = dst + r0 * T;
    for (int64_t t = 0; t < T; ++t)
      for (int r = 0; r < MR; ++r) panel[t * MR + r] = elem(r0 + r, t);
  });
}

}  // namespace ssl::ops::detail
