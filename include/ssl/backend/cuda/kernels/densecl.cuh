#pragma once
// DenseCL's matched-key gather (see ../densecl.cuh): out row r = k[(r / S) S + idx[r]].
#include "common.cuh"

namespace ssl::gpu::kernels {

// k (N S, C) dense key rows, idx (N S) int32 in [0, S): the key location matched to each query
// location of the same image. out (N S, C).
SSL_KERNEL void densecl_gather_matched(const float* __restrict__ k, const int32_t* __restrict__ idx, int64_t rows,
                                       int64_t S, int64_t C, float* __restrict__ out) {
  SSL_GRID_STRIDE(e, rows * C) {
    const int64_t r = e / C, c = e % C;
    out[e] = k[((r / S) * S + int64_t(idx[r])) * C + c];
  }
}

}  // namespace ssl::gpu::kernels
