#pragma once
// Cosine regression rows of BYOL / SimSiam (see ../byol.cuh): normalisation, cosine and the
// gradient w.r.t. p fused in one pass per row.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Row i of p, z (N, D), eps the norm clamp, g = coef / N:
//   pn = p / max(|p|, eps), zn = z / max(|z|, eps), cos_i = pn . zn,  d pn = g zn,
//   dp = (d pn - pn (pn . d pn)) / |p| = g (zn - pn cos_i) / |p|, or d pn / eps where |p| < eps.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    cosine_regression_rows(const float* __restrict__ p, const float* __restrict__ z, int64_t D, float eps, float g,
                           float* __restrict__ dp, float* __restrict__ cos_out) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x;
  const float* pi = p + i * D;
  const float* zi = z + i * D;
  float spp = 0.0f, szz = 0.0f, spz = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    spp += pi[d] * pi[d];
    szz += zi[d] * zi[d];
    spz += pi[d] * zi[d];
  }
  const float np = sqrtf(block_sum(spp, red));
  const float nz = sqrtf(block_sum(szz, red));
  const float dot = block_sum(spz, red);
  const float inv_p = 1.0f / fmaxf(np, eps), inv_z = 1.0f / fmaxf(nz, eps);
  const float c = dot * inv_p * inv_z;
  const bool clamped = np < eps;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float dpn = g * zi[d] * inv_z;
    dp[i * D + d] = clamped ? dpn * inv_p : (dpn - pi[d] * inv_p * (g * c)) * inv_p;
  }
  if (threadIdx.x == 0) cos_out[i] = c;
}

}  // namespace ssl::gpu::kernels
