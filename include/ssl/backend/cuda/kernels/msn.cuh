#pragma once
// MSN loss rows (see ../msn.cuh and losses/msn.hpp): per-row log-softmax, then per anchor row the
// gradient and its cross-entropy / entropy terms, then one block for the value. One block per row,
// fixed-order reductions: deterministic.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Row r of s (R, K): logp = s scale - logsumexp(s scale), p = exp(logp). Either output may be null.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    msn_log_softmax_rows(const float* __restrict__ s, int64_t K, float scale, float* __restrict__ logp,
                         float* __restrict__ p) {
  __shared__ float red[32];
  const int64_t off = int64_t(blockIdx.x) * K;
  float m = -INFINITY;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) m = fmaxf(m, s[off + k] * scale);
  m = block_max(m, red);
  float z = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) z += expf(s[off + k] * scale - m);
  z = block_sum(z, red);
  const float lse = m + logf(z);
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const float l = s[off + k] * scale - lse;
    if (logp) logp[off + k] = l;
    if (p) p[off + k] = expf(l);
  }
}

// Anchor row r of p, logp (R, K), its target row q[r mod N] (N, K), column sums cs (K) of p:
//   log pbar_k = log(cs_k / R) (0 where cs_k = 0),  a = sum_k p log pbar,  e = sum_k p logp,
//   grad_rk = g [p - q + w_me p (log pbar_k - a) - w_ent p (logp_k - e)]      (g = 1 / (R tau))
//   ce[r] = -sum_k q logp,  plogp[r] = e.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    msn_anchor_rows(const float* __restrict__ p, const float* __restrict__ logp, const float* __restrict__ q,
                    const float* __restrict__ cs, int64_t N, int64_t K, float inv_r, float g, float w_me, float w_ent,
                    float* __restrict__ grad, float* __restrict__ ce, float* __restrict__ plogp) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x, off = r * K, qoff = (r % N) * K;
  float a = 0.0f, e = 0.0f, c = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const float lpb = cs[k] > 0.0f ? logf(cs[k] * inv_r) : 0.0f;
    a += p[off + k] * lpb;
    e += p[off + k] * logp[off + k];
    c -= q[qoff + k] * logp[off + k];
  }
  a = block_sum(a, red);
  e = block_sum(e, red);
  c = block_sum(c, red);
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const float lpb = cs[k] > 0.0f ? logf(cs[k] * inv_r) : 0.0f;
    const float pk = p[off + k];
    grad[off + k] = g * (pk - q[qoff + k] + w_me * pk * (lpb - a) - w_ent * pk * (logp[off + k] - e));
  }
  if (threadIdx.x == 0) {
    ce[r] = c;
    plogp[r] = e;
  }
}

// One block: parts = [sum ce / R, sum_k pbar log pbar + log K, -sum plogp / R] (pbar = cs / R),
// value = parts[0] + w_me parts[1] + w_ent parts[2].
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    msn_value(const float* __restrict__ ce, const float* __restrict__ plogp, int64_t R, const float* __restrict__ cs,
              int64_t K, float inv_r, float w_me, float w_ent, float* __restrict__ value, float* __restrict__ parts) {
  __shared__ float red[32];
  float c = 0.0f, e = 0.0f, me = 0.0f;
  for (int64_t j = threadIdx.x; j < R; j += blockDim.x) {
    c += ce[j];
    e += plogp[j];
  }
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const float pb = cs[k] * inv_r;
    if (pb > 0.0f) me += pb * logf(pb);
  }
  c = block_sum(c, red);
  e = block_sum(e, red);
  me = block_sum(me, red);
  if (threadIdx.x == 0) {
    parts[0] = c * inv_r;
    parts[1] = me + logf(float(K));
    parts[2] = -e * inv_r;
    value[0] = parts[0] + w_me * parts[1] + w_ent * parts[2];
  }
}

}  // namespace ssl::gpu::kernels
