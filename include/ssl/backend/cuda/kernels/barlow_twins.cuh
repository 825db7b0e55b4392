#pragma once
// Kernels of Barlow Twins (see ../barlow_twins.cuh): per-column batch standardisation and its
// backward (one thread per column, coalesced across a warp, accumulated in double), and the
// rewrite of the cross-correlation rows into their gradient.
#include "common.cuh"

namespace ssl::gpu::kernels {

// x (N, D): zs = (x - mean_k) * inv_std_k, inv_std_k = 1 / sqrt(var_biased_k + eps).
SSL_KERNEL void standardize_columns(const float* __restrict__ x, int64_t N, int64_t D, float eps,
                                    float* __restrict__ zs, float* __restrict__ inv_std) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= D) return;
  double m = 0, v = 0;
  for (int64_t i = 0; i < N; ++i) m += x[i * D + k];
  m /= double(N);
  for (int64_t i = 0; i < N; ++i) v += (x[i * D + k] - m) * (x[i * D + k] - m);
  v /= double(N);
  const double inv = 1.0 / sqrt(v + double(eps));
  inv_std[k] = float(inv);
  for (int64_t i = 0; i < N; ++i) zs[i * D + k] = float((x[i * D + k] - m) * inv);
}

// dx = inv_std (dzs - mean_batch dzs - zs mean_batch(dzs zs)), column k per thread.
SSL_KERNEL void standardize_columns_backward(const float* __restrict__ zs, const float* __restrict__ inv_std,
                                             const float* __restrict__ dzs, int64_t N, int64_t D,
                                             float* __restrict__ dx) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= D) return;
  double mg = 0, mgz = 0;
  for (int64_t i = 0; i < N; ++i) {
    mg += dzs[i * D + k];
    mgz += double(dzs[i * D + k]) * zs[i * D + k];
  }
  mg /= double(N);
  mgz /= double(N);
  const double s = inv_std[k];
  for (int64_t i = 0; i < N; ++i) dx[i * D + k] = float(s * (dzs[i * D + k] - mg - zs[i * D + k] * mgz));
}

// Row i of c (D, D): row_loss_i = (1 - c_ii)^2 + lambda sum_{j != i} c_ij^2;
//   c_ii <- 2 (c_ii - 1), c_ij <- 2 lambda c_ij.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    barlow_twins_rows(float* __restrict__ c, int64_t D, float lambda, float* __restrict__ row_loss) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x;
  float* ci = c + i * D;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    const float v = ci[j];
    if (j == i) {
      s += (1.0f - v) * (1.0f - v);
      ci[j] = 2.0f * (v - 1.0f);
    } else {
      s += lambda * v * v;
      ci[j] = 2.0f * lambda * v;
    }
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) row_loss[i] = s;
}

}  // namespace ssl::gpu::kernels
