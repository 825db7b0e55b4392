#pragma once
// Final reduction of the device losses: out[0] = offset + scale * sum of n per-row terms,
// one block, fixed order (deterministic); the loss value never leaves the device.
#include "common.cuh"

namespace ssl::gpu::kernels {

SSL_KERNEL void __launch_bounds__(block_reduce_max)
    affine_sum(const float* __restrict__ v, int64_t n, float scale, float offset, float* __restrict__ out) {
  __shared__ float red[32];
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += v[j];
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[0] = offset + scale * s;
}

}  // namespace ssl::gpu::kernels
