#pragma once
// Kernels of InfoNCE / MoCo (see ../info_nce.cuh for the math): the positive logit of each row,
// the cross-entropy rows with one target column per row, and the positive pair's gradients.
#include "common.cuh"

namespace ssl::gpu::kernels {

// out[i * out_stride] = scale * a_i . b_i  (a, b: (R, D)); one block per row.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    row_dot(const float* __restrict__ a, const float* __restrict__ b, int64_t D, float scale, float* __restrict__ out,
            int64_t out_stride) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x;
  float s = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += a[i * D + d] * b[i * D + d];
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[i * out_stride] = scale * s;
}

// S: (R, C) logits; the target of row i is column t_i = i * target_step (0: column 0, 1: the diagonal).
//   row_loss_i = logsumexp(S_i) - S_i,t_i;  S_i <- g_scale softmax(S_i), then S_i,t_i -= g_scale.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    softmax_xent_rows(float* __restrict__ S, int64_t C, int64_t target_step, float g_scale,
                      float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x, t = i * target_step;
  float* s = S + i * C;
  const float s_t = s[t];
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, s[j]);
  m = block_max(m, red);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) sum += expf(s[j] - m);
  sum = block_sum(sum, red);
  const float scale = g_scale / sum;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    float g = expf(s[j] - m) * scale;
    if (j == t) g -= g_scale;
    s[j] = g;
  }
  if (threadIdx.x == 0) row_loss[i] = m + logf(sum) - s_t;
}

// Positive pair of row i, with g0 = G_i0 / tau (G: (N, C), the gradient of the logits):
//   d an_i += g0 pn_i (accumulated onto the negatives' part),  d pn_i = g0 an_i (when dp != null).
SSL_KERNEL void info_nce_positive_grads(const float* __restrict__ G, int64_t C, const float* __restrict__ an,
                                        const float* __restrict__ pn, int64_t N, int64_t D, float inv_t,
                                        float* __restrict__ da, float* __restrict__ dp) {
  SSL_GRID_STRIDE(e, N * D) {
    const float g0 = G[(e / D) * C] * inv_t;
    da[e] += g0 * pn[e];
    if (dp) dp[e] = g0 * an[e];
  }
}

}  // namespace ssl::gpu::kernels
