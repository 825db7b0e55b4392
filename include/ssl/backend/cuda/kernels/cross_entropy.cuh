#pragma once
// Cross-entropy rows (see ../cross_entropy.cuh): one block per row of logits (N, C).
#include "common.cuh"

namespace ssl::gpu::kernels {

// Row i with label y, weights w (null: all 1), W = sum_c w_c, smoothing eps:
//   row_loss_i = (1 - eps) w_y (lse - x_y) + eps/C sum_c w_c (lse - x_c)
//   d_ic = [ (1 - eps) w_y (p_ic - [c = y]) + eps/C (W p_ic - w_c) ] * inv_norm
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    cross_entropy_rows(const float* __restrict__ x, const int64_t* __restrict__ labels, const float* __restrict__ w,
                       int64_t C, float eps, float w_total, float inv_norm, float* __restrict__ grad,
                       float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x, y = labels[i];
  const float* xr = x + i * C;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = fmaxf(m, xr[c]);
  m = block_max(m, red);
  float s = 0.0f, ws = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    s += expf(xr[c] - m);
    ws += (w ? w[c] : 1.0f) * xr[c];
  }
  s = block_sum(s, red);
  ws = eps > 0.0f ? block_sum(ws, red) : 0.0f;
  const float lse = m + logf(s), wy = w ? w[y] : 1.0f;
  const float a = (1.0f - eps) * wy, b = eps / float(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float p = expf(xr[c] - lse);
    float d = a * p + b * (w_total * p - (w ? w[c] : 1.0f));
    if (c == y) d -= a;
    grad[i * C + c] = d * inv_norm;
  }
  // sum_c w_c (lse - x_c) = W lse - sum_c w_c x_c
  if (threadIdx.x == 0) row_loss[i] = a * (lse - xr[y]) + b * (w_total * lse - ws);
}

// out[0] = scale * sum of v (n values), one block, fixed order.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    scaled_sum(const float* __restrict__ v, int64_t n, float scale, float* __restrict__ out) {
  __shared__ float red[32];
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += v[j];
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[0] = s * scale;
}

}  // namespace ssl::gpu::kernels
