#pragma once
// Row softmax / log-softmax, one block per row of (R, C), max-shifted:
//   p_ij = exp(x_ij - m_i) / sum_j exp(x_ij - m_i),  log p_ij = x_ij - m_i - log sum_j exp(x_ij - m_i)
// Backward of softmax from its output p:      dx = p * (dy - sum_j dy_j p_j)
// Backward of log-softmax from its output l:  dx = dy - exp(l) * sum_j dy_j
#include "common.cuh"

namespace ssl::gpu::kernels {

SSL_KERNEL void __launch_bounds__(block_reduce_max) softmax_rows(const float* __restrict__ x, float* __restrict__ y, int64_t C, bool log_output) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * C;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = block_max(m, red);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += expf(xr[j] - m);
  s = block_sum(s, red);
  const float log_s = logf(s), inv_s = 1.0f / s;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
    y[r * C + j] = log_output ? xr[j] - m - log_s : expf(xr[j] - m) * inv_s;
}

SSL_KERNEL void __launch_bounds__(block_reduce_max) softmax_rows_backward(const float* __restrict__ y, const float* __restrict__ dy,
                                      float* __restrict__ dx, int64_t C, bool log_output) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const float *yr = y + r * C, *gr = dy + r * C;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += log_output ? gr[j] : gr[j] * yr[j];
  s = block_sum(s, red);
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
    dx[r * C + j] = log_output ? gr[j] - expf(yr[j]) * s : yr[j] * (gr[j] - s);
}

}  // namespace ssl::gpu::kernels
