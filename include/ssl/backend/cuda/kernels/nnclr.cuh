#pragma once
// The support-set gather of NNCLR (see ../nnclr.cuh): out row i = rows[idx[i]].
#include "common.cuh"

namespace ssl::gpu::kernels {

// rows (F, D), idx (N) int32 in [0, F): out (N, D).
SSL_KERNEL void gather_indexed_rows(const float* __restrict__ rows, const int32_t* __restrict__ idx, int64_t N,
                                    int64_t D, float* __restrict__ out) {
  SSL_GRID_STRIDE(e, N * D) {
    const int64_t i = e / D, d = e % D;
    out[e] = rows[int64_t(idx[i]) * D + d];
  }
}

}  // namespace ssl::gpu::kernels
