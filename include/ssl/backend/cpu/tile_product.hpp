#pragma once
// Register-tile product, the inner kernel of the CPU convolution:
//   acc[r][v] = Σ_{t < T} a(r, t) · b(t)[L v .. L v + L - 1],   r < MR, v < 2   (an MR x 2L tile)
// a(r, t) is a scalar (broadcast), b(t) points at 2L contiguous floats, L = vector_floats. The
// caller says where both come from (a packed panel, rows at an offset table, strided rows) and
// what happens to the tile (stored, added). Written with GCC vector extensions in the machine's
// native width, and the tile sized to its register file:
//   AVX-512: L = 16, tiles of 12 x 32 (24 accumulators of the 32 zmm registers)
//   AVX/AVX2: L = 8, tiles of 6 x 16 (12 of the 16 ymm registers)
//   otherwise (SSE): L = 4, tiles of 6 x 8
// (A tile wider than the register file spills every accumulator: 30x slower.)
#include <cstdint>
#include <cstring>

namespace ssl::ops::detail {

#if defined(__AVX512F__)
inline constexpr int vector_floats = 16;
inline constexpr int tile_rows = 12;
#elif defined(__AVX__)
inline constexpr int vector_floats = 8;
inline constexpr int tile_rows = 6;
#else
inline constexpr int vector_floats = 4;
inline constexpr int tile_rows = 6;
#endif

/// One native vector of floats.
using vfloat = float __attribute__((vector_size(vector_floats * sizeof(float))));

/// Columns of one tile (two vectors).
inline constexpr int64_t tile_cols = 2 * vector_floats;

inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }

/// d[0, tile_cols) = one tile row; add_tile_row: d[0, tile_cols) += it.
inline void store_tile_row(float* d, const vfloat (&row)[2]) {
  vstore(d, row[0]);
  vstore(d + vector_floats, row[1]);
}
inline void add_tile_row(float* d, const vfloat (&row)[2]) {
  vstore(d, vload(d) + row[0]);
  vstore(d + vector_floats, vload(d + vector_floats) + row[1]);
}

template <int MR, class AScalar, class BRow>
[[gnu::always_inline]] inline void tile_product(int64_t T, AScalar a, BRow b, vfloat (&acc)[MR][2]) {
  for (auto& row : acc) row[0] = row[1] = vfloat{};
  for (int64_t t = 0; t < T; ++t) {
    const float* bt = b(t);
    const vfloat b0 = vload(bt), b1 = vload(bt + vector_floats);
    for (int r = 0; r < MR; ++r) {
      const float s = a(r, t);
      acc[r][0] += s * b0;
      acc[r][1] += s * b1;
    }
  }
}

/// Calls f.template operator()<MR>(r0) over [0, n) in blocks of tile_rows rows, then (AVX-512)
/// one block of 8, then one of 4, then single rows.
template <class F>
inline void for_row_blocks(int64_t n, F&& f) {
  int64_t r = 0;
  for (; r + tile_rows <= n; r += tile_rows) f.template operator()<tile_rows>(r);
  if constexpr (tile_rows > 8) {
    if (r + 8 <= n) {
      f.template operator()<8>(r);
      r += 8;
    }
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
