#pragma once
// Kernel of the triplet loss (see ../triplet.cuh): one block per triplet row.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Row i of a, p, q (N, D) (the rows already normalised for the cosine distance), g = 1/N:
//   squared:  d_ap = |a - p|^2, d_an = |a - q|^2;   cosine: d_ap = 1 - a.p, d_an = 1 - a.q
//   l = d_ap - d_an + margin; row_loss = max(l, 0); when l > 0:
//   squared: dp = -2g (a - p), dq = 2g (a - q), da = -dp - dq;  cosine: da = g (q - p), dp = -g a, dq = g a.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    triplet_rows(const float* __restrict__ a, const float* __restrict__ p, const float* __restrict__ q, int64_t D,
                 float margin, bool cosine, float g, float* __restrict__ da, float* __restrict__ dp,
                 float* __restrict__ dq, float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t o = int64_t(blockIdx.x) * D;
  float sap = 0.0f, san = 0.0f;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
    const float ak = a[o + k], pk = p[o + k], qk = q[o + k];
    if (cosine) {
      sap += ak * pk;
      san += ak * qk;
    } else {
      sap += (ak - pk) * (ak - pk);
      san += (ak - qk) * (ak - qk);
    }
  }
  float d_ap = block_sum(sap, red), d_an = block_sum(san, red);
  if (cosine) {
    d_ap = 1.0f - d_ap;
    d_an = 1.0f - d_an;
  }
  const float l = d_ap - d_an + margin;
  const bool active = l > 0.0f;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
    const float ak = a[o + k], pk = p[o + k], qk = q[o + k];
    if (!active) {
      da[o + k] = dp[o + k] = dq[o + k] = 0.0f;
    } else if (cosine) {
      da[o + k] = g * (qk - pk);
      dp[o + k] = -g * ak;
      dq[o + k] = g * ak;
    } else {
      const float gp = -2.0f * g * (ak - pk), gq = 2.0f * g * (ak - qk);
      dp[o + k] = gp;
      dq[o + k] = gq;
      da[o + k] = -gp - gq;
    }
  }
  if (threadIdx.x == 0) row_loss[blockIdx.x] = active ? l : 0.0f;
}

}  // namespace ssl::gpu::kernels
