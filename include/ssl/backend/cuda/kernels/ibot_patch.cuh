#pragma once
// iBOT patch-loss kernel (see ../ibot_patch.cuh): one block per student row, fixed-order block
// reductions (deterministic).
#include "dino.cuh"  // block_row_lse

namespace ssl::gpu::kernels {

// Student row r of s (M, K), teacher probabilities t (M, K), row weight w[r]:
//   lse = logsumexp(s_r / tau_s),  T = sum_k t_rk
//   row_loss[r] = w_r sum_k t_rk (lse - s_rk / tau_s),  grad_r = w_r (T softmax(s_r / tau_s) - t_r) / tau_s
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    ibot_patch_rows(const float* __restrict__ s, const float* __restrict__ t, const float* __restrict__ w, int64_t K,
                    float inv_ts, float* __restrict__ grad, float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t off = int64_t(blockIdx.x) * K;
  const float* x = s + off;
  const float* p = t + off;
  const float lse = block_row_lse(x, K, inv_ts, red);
  float loss = 0.0f, tsum = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    loss += p[k] * (lse - x[k] * inv_ts);
    tsum += p[k];
  }
  loss = block_sum(loss, red);
  tsum = block_sum(tsum, red);
  const float wr = w[blockIdx.x], g = wr * inv_ts;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) grad[off + k] = (tsum * expf(x[k] * inv_ts - lse) - p[k]) * g;
  if (threadIdx.x == 0) row_loss[blockIdx.x] = wr * loss;
}

}  // namespace ssl::gpu::kernels
