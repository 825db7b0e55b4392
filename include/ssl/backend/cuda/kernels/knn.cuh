#pragma once
// k-NN selection on the device: for each row of a block of cosines S (rows, n), its k largest
// entries in order (value descending, ties to the lower train index first, as the CPU's top-k).
#include <cmath>
#include <cstdint>

#include "common.cuh"

namespace ssl::gpu::kernels {

inline constexpr int knn_select_threads = 256;

// (value, index) pair ordering of the selection: a before b when a.v > b.v, or equal and a.i < b.i.
__device__ inline bool knn_before(float va, int64_t ia, float vb, int64_t ib) {
  return va > vb || (va == vb && ia < ib);
}

// One block per row r: k rounds of a block argmax over S[r, 0:n); the winner is written to
// val[r k + u], idx[r k + u] + offset (offset: the first train row of S's columns) and its entry set to
// -inf so the next round skips it. Cosines are finite (the caller checked the features), so a
// -inf entry never wins while k <= n. Cost: k passes over the row (S stays in L2 for short rows).
SSL_KERNEL void __launch_bounds__(knn_select_threads)
    knn_select(float* __restrict__ S, int64_t n, int k, float* __restrict__ val, int32_t* __restrict__ idx) {
  __shared__ float warp_v[knn_select_threads / 32];
  __shared__ int64_t warp_i[knn_select_threads / 32];
  float* s = S + int64_t(blockIdx.x) * n;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int u = 0; u < k; ++u) {
    float bv = -INFINITY;
    int64_t bi = INT64_MAX;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float v = s[j];
      if (knn_before(v, j, bv, bi)) {
        bv = v;
        bi = j;
      }
    }
    // every lane of every warp takes part (blockDim is a multiple of 32, no thread has exited)
    for (int off = 16; off > 0; off >>= 1) {
      const float ov = __shfl_down_sync(0xffffffffu, bv, off);
      const int64_t oi = __shfl_down_sync(0xffffffffu, bi, off);
      if (knn_before(ov, oi, bv, bi)) {
        bv = ov;
        bi = oi;
      }
    }
    if (lane == 0) {
      warp_v[warp] = bv;
      warp_i[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < warps; ++w)
        if (knn_before(warp_v[w], warp_i[w], bv, bi)) {
          bv = warp_v[w];
          bi = warp_i[w];
        }
      val[int64_t(blockIdx.x) * k + u] = bv;
      idx[int64_t(blockIdx.x) * k + u] = int32_t(bi);
      s[bi] = -INFINITY;
    }
    __syncthreads();  // the winner's entry is excluded before the next round reads the row
  }
}

}  // namespace ssl::gpu::kernels
