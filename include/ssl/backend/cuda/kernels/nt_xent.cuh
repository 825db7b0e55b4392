#pragma once
// Kernels of NT-Xent (see ../nt_xent.cuh for the math): row L2 normalisation and its backward,
// the masked row softmax that turns similarities into G = (P - onehot(p)) / 2N, and the mean.
#include "common.cuh"

namespace ssl::gpu::kernels {

// z_i = x_i / max(|x_i|, eps), norm_i = |x_i|; one block per row.
SSL_KERNEL void __launch_bounds__(block_reduce_max) normalize_rows(const float* __restrict__ x, int64_t D, float eps, float* __restrict__ z,
                               float* __restrict__ norm) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  float s = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += x[r * D + d] * x[r * D + d];
  const float n = sqrtf(block_sum(s, red));
  const float inv = 1.0f / fmaxf(n, eps);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) z[r * D + d] = x[r * D + d] * inv;
  if (threadIdx.x == 0) norm[r] = n;
}

// dx_i = (dz_i - z_i (z_i . dz_i)) / |x_i|, or dz_i / eps where the norm was clamped.
SSL_KERNEL void __launch_bounds__(block_reduce_max) normalize_rows_backward(const float* __restrict__ z, const float* __restrict__ norm,
                                        const float* __restrict__ dz, int64_t D, float eps, float* __restrict__ dx) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  float s = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += z[r * D + d] * dz[r * D + d];
  const float dot = block_sum(s, red);
  const float n = norm[r];
  const bool clamped = n < eps;
  const float inv = 1.0f / (clamped ? eps : n);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
    dx[r * D + d] = clamped ? dz[r * D + d] * inv : (dz[r * D + d] - z[r * D + d] * dot) * inv;
}

// S: (R, C) logits (already / tau). Row i: mask S_ii, row loss = lse - S_i,p(i),
// S_i <- softmax / R, then S_i,p(i) -= 1 / R. p(i) = i + N or i - N.
SSL_KERNEL void __launch_bounds__(block_reduce_max) nt_xent_rows(float* __restrict__ S, int64_t R, int64_t C, float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x, N = R / 2;
  const int64_t pos = i < N ? i + N : i - N;
  float* s = S + i * C;
  const float s_pos = s[pos];
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
    if (j != i) m = fmaxf(m, s[j]);
  m = block_max(m, red);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
    if (j != i) sum += expf(s[j] - m);
  sum = block_sum(sum, red);
  const float inv_rows = 1.0f / float(R), scale = inv_rows / sum;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    float g = j == i ? 0.0f : expf(s[j] - m) * scale;
    if (j == pos) g -= inv_rows;
    s[j] = g;
  }
  if (threadIdx.x == 0) row_loss[i] = m + logf(sum) - s_pos;
}

// out[0] = mean of v (n values), one block, fixed order.
SSL_KERNEL void __launch_bounds__(block_reduce_max) mean_of(const float* __restrict__ v, int64_t n, float* __restrict__ out) {
  __shared__ float red[32];
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += v[j];
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[0] = s / float(n);
}

}  // namespace ssl::gpu::kernels
