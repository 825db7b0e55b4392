#pragma once
// Sinkhorn-Knopp kernels (see ../sinkhorn_knopp.cuh) on q (R, K) row-major: row r is a sample,
// column k a prototype. Column passes are one thread a column; row passes one block a row with
// fixed-order block reductions (deterministic).
#include "common.cuh"

namespace ssl::gpu::kernels {

// Column k of t (R, K): colmax[k] = max of its finite entries, bad[k] = number of non-finite entries.
SSL_KERNEL void sinkhorn_column_max(const float* __restrict__ t, int64_t R, int64_t K, float* __restrict__ colmax,
                                    float* __restrict__ bad) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= K) return;
  float m = -INFINITY, n = 0.0f;
  for (int64_t r = 0; r < R; ++r) {
    const float x = t[r * K + k];
    if (isfinite(x))
      m = fmaxf(m, x);
    else
      n += 1.0f;
  }
  colmax[k] = m;
  bad[k] = n;
}

// q[r, k] = exp((t[r, k] - colmax[k]) / tau) over R K entries
SSL_KERNEL void sinkhorn_exp(const float* __restrict__ t, const float* __restrict__ colmax, int64_t n, int64_t K,
                             float inv_tau, float* __restrict__ q) {
  SSL_GRID_STRIDE(i, n) q[i] = expf((t[i] - colmax[i % K]) * inv_tau);
}

// Row r of q (one block): q_k <- q_k / (K colsum_k) (0 where colsum_k = 0), then
// q <- row_mass q / sum_k q (0 where that sum is 0). Divisions, not reciprocals: no overflow for
// tiny sums (every entry is at most its sum). Tests are "!= 0", so a NaN (from a non-finite
// logit) propagates to the targets instead of being zeroed away.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    sinkhorn_rows(float* __restrict__ q, const float* __restrict__ colsum, int64_t K, float inv_k, float row_mass) {
  __shared__ float red[32];
  float* row = q + int64_t(blockIdx.x) * K;
  float s = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const float c = colsum[k];
    const float v = c != 0.0f ? row[k] / c * inv_k : 0.0f;
    row[k] = v;
    s += v;
  }
  s = block_sum(s, red);
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) row[k] = s != 0.0f ? row[k] / s * row_mass : 0.0f;
}

}  // namespace ssl::gpu::kernels
