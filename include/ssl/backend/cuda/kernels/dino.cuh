#pragma once
// DINO head and loss kernels (see ../weight_norm.cuh and ../dino_loss.cuh): one block per row,
// fixed-order block reductions (deterministic).
#include "common.cuh"

namespace ssl::gpu::kernels {

// y_i = x_i / max(|x_i|, eps), norms_i = |x_i|
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    l2_normalize_rows(const float* __restrict__ x, int64_t D, float eps, float* __restrict__ y,
                      float* __restrict__ norms) {
  __shared__ float red[32];
  const float* xr = x + int64_t(blockIdx.x) * D;
  float s = 0.0f;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) s += xr[k] * xr[k];
  s = block_sum(s, red);
  const float n = sqrtf(s), inv = 1.0f / fmaxf(n, eps);
  if (threadIdx.x == 0) norms[blockIdx.x] = n;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) y[int64_t(blockIdx.x) * D + k] = xr[k] * inv;
}

// dx_i = (dy_i - y_i (y_i . dy_i)) / |x_i|, or dy_i / eps where the norm was clamped
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    l2_normalize_rows_backward(const float* __restrict__ y, const float* __restrict__ norms,
                               const float* __restrict__ dy, int64_t D, float eps, float* __restrict__ dx) {
  __shared__ float red[32];
  const int64_t off = int64_t(blockIdx.x) * D;
  const float n = norms[blockIdx.x];
  float dot = 0.0f;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) dot += y[off + k] * dy[off + k];
  dot = block_sum(dot, red);
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x)
    dx[off + k] = n < eps ? dy[off + k] / eps : (dy[off + k] - y[off + k] * dot) / n;
}

// W_o = g_o v_o / |v_o|
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    weight_norm(const float* __restrict__ v, const float* __restrict__ g, int64_t I, float* __restrict__ w) {
  __shared__ float red[32];
  const int64_t off = int64_t(blockIdx.x) * I;
  float s = 0.0f;
  for (int64_t k = threadIdx.x; k < I; k += blockDim.x) s += v[off + k] * v[off + k];
  s = block_sum(s, red);
  const float scale = g[blockIdx.x] / fmaxf(sqrtf(s), 1e-30f);
  for (int64_t k = threadIdx.x; k < I; k += blockDim.x) w[off + k] = v[off + k] * scale;
}

// u_o = v_o / |v_o|:  dg_o += dW_o . u_o,  dv_o += g_o / |v_o| (dW_o - (dW_o . u_o) u_o)
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    weight_norm_backward(const float* __restrict__ v, const float* __restrict__ g, const float* __restrict__ dw,
                         int64_t I, float* __restrict__ dv, float* __restrict__ dg) {
  __shared__ float red[32];
  const int64_t off = int64_t(blockIdx.x) * I;
  float s = 0.0f, dot = 0.0f;
  for (int64_t k = threadIdx.x; k < I; k += blockDim.x) {
    s += v[off + k] * v[off + k];
    dot += dw[off + k] * v[off + k];
  }
  s = block_sum(s, red);
  dot = block_sum(dot, red);
  const float nrm = fmaxf(sqrtf(s), 1e-30f), proj = dot / nrm, go = g[blockIdx.x];
  if (threadIdx.x == 0) dg[blockIdx.x] += proj;
  const float a = go / nrm, b = go * proj / (nrm * nrm);
  for (int64_t k = threadIdx.x; k < I; k += blockDim.x) dv[off + k] += a * dw[off + k] - b * v[off + k];
}

// Teacher row r of (G B, K): p = softmax((t - c) / tau_t)
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    dino_teacher_probs(const float* __restrict__ t, const float* __restrict__ center, int64_t K, float inv_tt,
                       float* __restrict__ p) {
  __shared__ float red[32];
  const int64_t off = int64_t(blockIdx.x) * K;
  float m = -INFINITY;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) m = fmaxf(m, (t[off + k] - center[k]) * inv_tt);
  m = block_max(m, red);
  float s = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) s += expf((t[off + k] - center[k]) * inv_tt - m);
  s = block_sum(s, red);
  const float lse = m + logf(s);
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) p[off + k] = expf((t[off + k] - center[k]) * inv_tt - lse);
}

// logsumexp_k(x_k inv_ts) over one row of K values, by the whole block (all threads get it);
// fixed-order reductions. Shared by the DINO and iBOT student rows.
__device__ inline float block_row_lse(const float* __restrict__ x, int64_t K, float inv_ts, float* red) {
  float m = -INFINITY;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) m = fmaxf(m, x[k] * inv_ts);
  m = block_max(m, red);
  float z = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) z += expf(x[k] * inv_ts - m);
  z = block_sum(z, red);
  return m + logf(z);
}

// Student row r = (v, b) of (V B, K), teacher probs (G B, K):
//   T = sum_{g < G, g != v} p[g, b],  n_v = #such g,  lse = logsumexp(x / tau_s)
//   row_loss = sum_k T_k (lse - x_k / tau_s),  grad = (n_v softmax(x / tau_s) - T) * g_scale
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    dino_student_rows(const float* __restrict__ s, const float* __restrict__ p, int64_t B, int64_t G, int64_t K,
                      float inv_ts, float g_scale, float* __restrict__ grad, float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x, v = r / B, b = r % B, off = r * K;
  const float* x = s + off;
  const float lse = block_row_lse(x, K, inv_ts, red);
  const float n_v = float(v < G ? G - 1 : G);
  float loss = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    float tsum = 0.0f;
    for (int64_t g = 0; g < G; ++g)
      if (g != v) tsum += p[(g * B + b) * K + k];
    const float xs = x[k] * inv_ts;
    loss += tsum * (lse - xs);
    grad[off + k] = (n_v * expf(xs - lse) - tsum) * g_scale;
  }
  loss = block_sum(loss, red);
  if (threadIdx.x == 0) row_loss[r] = loss;
}

}  // namespace ssl::gpu::kernels
