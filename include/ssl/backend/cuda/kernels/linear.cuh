#pragma once
// Row/column helpers of the linear layer: broadcast a bias over rows, sum rows into columns.
#include "common.cuh"

namespace ssl::gpu::kernels {

// y (rows, cols) = b broadcast over rows
SSL_KERNEL void broadcast_rows(const float* __restrict__ b, float* __restrict__ y, int64_t rows, int64_t cols) {
  SSL_GRID_STRIDE(i, rows * cols) y[i] = b[i % cols];
}

// Column sums in two deterministic stages (rows can be many: ViT tokens are N*T rows):
//   stage 1: partial[chunk, c] = sum of g[r, c] over the rows of the chunk (chunk_rows each),
//            grid (column blocks, chunks <= 65535), coalesced over columns;
//   stage 2: acc[c] (+)= sum over chunks of partial[chunk, c], in chunk order.
/// Rows per chunk: 64, or more when 64 would need more than 65535 chunks (gridDim.y).
inline int64_t column_chunk_rows(int64_t rows) {
  const int64_t least = (rows + 65534) / 65535;
  return least > 64 ? least : 64;
}

SSL_KERNEL void column_sums_partial(const float* __restrict__ g, int64_t rows, int64_t cols, int64_t chunk_rows,
                                    float* __restrict__ partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = int64_t(blockIdx.y) * chunk_rows;
  const int64_t r1 = min(rows, r0 + chunk_rows);
  float s = 0.0f;
  for (int64_t r = r0; r < r1; ++r) s += g[r * cols + c];
  partial[int64_t(blockIdx.y) * cols + c] = s;
}

SSL_KERNEL void column_sums_finish(const float* __restrict__ partial, int64_t chunks, int64_t cols,
                                   float* __restrict__ acc, bool accumulate) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s = 0.0f;
  for (int64_t k = 0; k < chunks; ++k) s += partial[k * cols + c];
  acc[c] = accumulate ? acc[c] + s : s;
}

}  // namespace ssl::gpu::kernels
