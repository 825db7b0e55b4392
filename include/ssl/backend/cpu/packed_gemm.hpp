#pragma once
// Serial packed GEMM on one thread's block, built on the register tile of tile_product.hpp:
//   C = alpha * op(A) op(B) + beta * C,   op(A): (M, K), op(B): (K, N), row-major with strides.
// Blocking (L = vector_floats, P = 2 L columns per panel, MR = tile_rows rows per tile):
//   for each block of NC columns and KC depth:   pack op(B)[KC, NC] into panels of P columns,
//                                                 dimension-major (t P + v), zero-padded: stays in L2
//     for each block of MC rows:                 pack op(A)[MC, KC] into panels of MR rows (t MR + r)
//       for each MR-row panel (stays in L1):     for each P-column panel: one MR x P tile in
//                                                 registers over KC, then added into C
// AVX-512: 12 x 32 tiles; a (12, 256) A panel is 12 KB (L1), a (256, 512) B block 512 KB (L2).
// The first depth block applies beta (beta = 0 never reads C, so NaN in C does not leak); later
// blocks add. Every output element sums its K products in the same order whatever the thread
// count or the block's position, so results are reproducible.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "tile_product.hpp"

namespace ssl::ops::detail {

inline constexpr int64_t packed_gemm_kc = 256;  // depth per block
inline constexpr int64_t packed_gemm_mc = 240;  // rows per packed A block (multiple of 12 and 6)
inline constexpr int64_t packed_gemm_nc = 512;  // columns per packed B block (multiple of 2 L)

/// Per-thread packing buffers, allocated once per thread at their largest size (64-byte aligned),
/// so a steady-state training step allocates nothing here.
struct packed_gemm_buffers {
  struct free_deleter {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, free_deleter> a, b;
  packed_gemm_buffers() {
    a.reset(alloc(packed_gemm_mc * packed_gemm_kc));
    b.reset(alloc(packed_gemm_kc * packed_gemm_nc));
  }
  static float* alloc(int64_t n) {
    void* p = std::aligned_alloc(64, size_t(n) * sizeof(float));
    if (!p) throw std::bad_alloc();
    return static_cast<float*>(p);
  }
  static packed_gemm_buffers& local() {
    static thread_local packed_gemm_buffers buffers;
    return buffers;
  }
};

/// One (kc, P) panel, dimension-major, from P contiguous rows: column v < w is row(v)[0, kc) times
/// scale(v) at panel[t P + v]; columns v >= w are zero. (op(B) transposed here, and the k-NN's
/// normalised train rows in eval/knn.hpp.)
template <class Row, class Scale>
inline void pack_rows_as_panel(float* panel, int64_t w, int64_t kc, Row&& row, Scale&& scale) {
  constexpr int64_t P = tile_cols;
  for (int64_t v = 0; v < P; ++v) {
    if (v >= w) {
      for (int64_t t = 0; t < kc; ++t) panel[t * P + v] = 0.0f;
      continue;
    }
    const float* src = row(v);
    const float sv = scale(v);
    for (int64_t t = 0; t < kc; ++t) panel[t * P + v] = src[t] * sv;
  }
}

/// Packs op(B) rows [p0, p0 + kc), columns [j0, j0 + nc) into panels of P columns: element
/// (t, j0 + P c + v) at dst[c kc P + t P + v]; columns past nc are zero.
inline void pack_b_panels(bool tb, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                          float* dst) {
  constexpr int64_t P = tile_cols;
  for (int64_t c0 = 0; c0 < nc; c0 += P) {
    float* panel = dst + (c0 / P) * kc * P;
    const int64_t w = std::min(P, nc - c0);
    if (!tb) {  // op(B)(t, j) = B[t ldb + j]: rows of w contiguous floats
      for (int64_t t = 0; t < kc; ++t) {
        const float* src = B + (p0 + t) * ldb + j0 + c0;
        float* d = panel + t * P;
        int64_t v = 0;
        for (; v < w; ++v) d[v] = src[v];
        for (; v < P; ++v) d[v] = 0.0f;
      }
    } else {  // op(B)(t, j) = B[j ldb + t]: each column is a contiguous row of B (x 1 is exact)
      pack_rows_as_panel(
          panel, w, kc, [&](int64_t v) { return B + (j0 + c0 + v) * ldb + p0; }, [](int64_t) { return 1.0f; });
    }
  }
}

/// Packs op(A) rows [i0, i0 + mc), depth [p0, p0 + kc) into the row panels for_row_blocks visits.
inline void pack_a_panels(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                          float* dst) {
  if (!ta) {  // op(A)(r, t) = A[r lda + t]
    const float* base = A + i0 * lda + p0;
    pack_row_panels(mc, kc, dst, [&](int64_t r, int64_t t) { return base[r * lda + t]; });
  } else {  // op(A)(r, t) = A[t lda + r]: for each t the panel's MR rows are contiguous in A
    const float* base = A + p0 * lda + i0;
    pack_row_panels(mc, kc, dst, [&](int64_t r, int64_t t) { return base[t * lda + r]; });
  }
}

/// C[0, w) of one tile row: first block: alpha acc + beta C (C unread when beta = 0); later: C += alpha acc.
inline void write_tile_row(float* c, const vfloat (&acc)[2], int64_t w, float alpha, float beta, bool first) {
  const vfloat r0 = alpha * acc[0], r1 = alpha * acc[1];
  if (w == tile_cols) {
    if (first && beta == 0.0f) {
      vstore(c, r0);
      vstore(c + vector_floats, r1);
    } else {
      const float keep = first ? beta : 1.0f;
      vstore(c, keep * vload(c) + r0);
      vstore(c + vector_floats, keep * vload(c + vector_floats) + r1);
    }
    return;
  }
  float row[tile_cols];
  vstore(row, r0);
  vstore(row + vector_floats, r1);
  for (int64_t v = 0; v < w; ++v) c[v] = first ? (beta == 0.0f ? row[v] : beta * c[v] + row[v]) : c[v] + row[v];
}

/// C = alpha op(A) op(B) + beta C on one thread (M, N, K > 0).
inline void packed_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t P = tile_cols;
  auto& buffers = packed_gemm_buffers::local();
  float* apack = buffers.a.get();
  float* bpack = buffers.b.get();
  for (int64_t j0 = 0; j0 < N; j0 += packed_gemm_nc) {
    const int64_t nc = std::min(packed_gemm_nc, N - j0), panels = (nc + P - 1) / P;
    for (int64_t p0 = 0; p0 < K; p0 += packed_gemm_kc) {
      const int64_t kc = std::min(packed_gemm_kc, K - p0);
      const bool first = p0 == 0;
      pack_b_panels(tb, B, ldb, p0, kc, j0, nc, bpack);
      for (int64_t i0 = 0; i0 < M; i0 += packed_gemm_mc) {
        const int64_t mc = std::min(packed_gemm_mc, M - i0);
        pack_a_panels(ta, A, lda, i0, mc, p0, kc, apack);
        for_row_blocks(mc, [&]<int MR>(int64_t r) {
          const float* ap = apack + r * kc;
          for (int64_t c = 0; c < panels; ++c) {
            const float* bp = bpack + c * kc * P;
            vfloat acc[MR][2];
            tile_product<MR>(
                kc, [&](int i, int64_t t) { return ap[t * MR + i]; }, [&](int64_t t) { return bp + t * P; }, acc);
            const int64_t w = std::min(P, nc - c * P);
            float* cp = C + (i0 + r) * ldc + j0 + c * P;
            for (int i = 0; i < MR; ++i) write_tile_row(cp + i * ldc, acc[i], w, alpha, beta, first);
          }
        });
      }
    }
  }
}

}  // namespace ssl::ops::detail
