#pragma once
// Kernels of KoLeo (see ../koleo.cuh): nearest neighbour of each row and its distance term,
// and the gather that scatters the neighbour's gradient without atomics.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Row i of dots (N, N) = xn xn^T: j(i) = argmax_{j != i} dots_ij (ties: the lowest j, as the CPU);
//   u = xn_i - xn_j + eps, r = |u|, row_loss_i = -log(r + eps),
//   du_i = -u / (N max(r, 1e-30) (r + eps)).  blockDim.x a power of two <= block_reduce_max.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    koleo_rows(const float* __restrict__ dots, const float* __restrict__ xn, int64_t N, int64_t D, float eps,
               int64_t* __restrict__ neighbour, float* __restrict__ du, float* __restrict__ row_loss) {
  __shared__ float best_v[block_reduce_max];
  __shared__ int64_t best_j[block_reduce_max];
  __shared__ float red[32];
  const int64_t i = blockIdx.x;
  const float* d = dots + i * N;
  float bv = -INFINITY;
  int64_t bj = -1;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x)
    if (j != i && (bj < 0 || d[j] > bv)) {
      bv = d[j];
      bj = j;
    }
  best_v[threadIdx.x] = bv;
  best_j[threadIdx.x] = bj;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) {
      const float ov = best_v[threadIdx.x + half];
      const int64_t oj = best_j[threadIdx.x + half];
      const int64_t mj = best_j[threadIdx.x];
      if (oj >= 0 && (mj < 0 || ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oj < mj))) {
        best_v[threadIdx.x] = ov;
        best_j[threadIdx.x] = oj;
      }
    }
    __syncthreads();
  }
  const int64_t nb = best_j[0];
  const float* a = xn + i * D;
  const float* b = xn + nb * D;
  float s = 0.0f;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
    const float u = a[k] - b[k] + eps;
    s += u * u;
  }
  const float r = sqrtf(block_sum(s, red));
  const float coef = -1.0f / (float(N) * fmaxf(r, 1e-30f) * (r + eps));
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) du[i * D + k] = coef * (a[k] - b[k] + eps);
  if (threadIdx.x == 0) {
    neighbour[i] = nb;
    row_loss[i] = -logf(r + eps);
  }
}

// d xn_t = du_t - sum_{i : j(i) = t} du_i  (a gather per row t, in order of i: no atomics).
SSL_KERNEL void koleo_gather(const float* __restrict__ du, const int64_t* __restrict__ neighbour, int64_t N, int64_t D,
                             float* __restrict__ dz) {
  const int64_t t = blockIdx.x;
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
    float v = du[t * D + k];
    for (int64_t i = 0; i < N; ++i)
      if (neighbour[i] == t) v -= du[i * D + k];
    dz[t * D + k] = v;
  }
}

}  // namespace ssl::gpu::kernels
