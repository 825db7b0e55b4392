#pragma once
// Smooth L1 loss elements (see ../smooth_l1.cuh): a grid-stride pass that writes the gradient and
// one partial sum per block.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Element i of pred, target (n values), beta > 0, g = 1 / n, d = pred_i - target_i:
//   f(d) = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta,   grad_i = g clamp(d / beta, -1, 1),
//   partial[b] = sum of f over the elements block b visits (a fixed set and order for a fixed grid).
SSL_KERNEL void __launch_bounds__(block_size)
    smooth_l1_partials(const float* __restrict__ pred, const float* __restrict__ target, int64_t n, float beta,
                       float g, float* __restrict__ grad, float* __restrict__ partial) {
  __shared__ float red[32];
  const float inv_beta = 1.0f / beta;
  float s = 0.0f;
  SSL_GRID_STRIDE(i, n) {
    const float d = pred[i] - target[i], a = fabsf(d);
    s += a < beta ? 0.5f * d * d * inv_beta : a - 0.5f * beta;
    grad[i] = g * fminf(fmaxf(d * inv_beta, -1.0f), 1.0f);
  }
  s = block_sum(s, red);  // every thread reaches this: the loop above has no early exit
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

}  // namespace ssl::gpu::kernels
