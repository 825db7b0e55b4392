#pragma once
// Kernels of VICReg (see ../vicreg.cuh): the invariance rows, the column centring and
// standard deviations, and the rewrite of the covariance matrix into the gradient matrix.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Row i of x, y (N, D): d = x - y, gx = g d, gy = -g d, term_i = scale * sum_d d^2.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    vicreg_invariance_rows(const float* __restrict__ x, const float* __restrict__ y, int64_t D, float g, float scale,
                           float* __restrict__ gx, float* __restrict__ gy, float* __restrict__ term) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x;
  float s = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float v = x[i * D + d] - y[i * D + d];
    s += v * v;
    gx[i * D + d] = g * v;
    gy[i * D + d] = -g * v;
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) term[i] = scale * s;
}

// One thread per column k of x (N, D) (coalesced across the threads of a warp), in double:
//   xc = x - mean_k,  sd_k = sqrt(sum xc^2 / (N - 1) + eps).
SSL_KERNEL void center_columns(const float* __restrict__ x, int64_t N, int64_t D, float eps, float* __restrict__ xc,
                               float* __restrict__ sd) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= D) return;
  double m = 0;
  for (int64_t i = 0; i < N; ++i) m += x[i * D + k];
  m /= double(N);
  double v = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double c = x[i * D + k] - m;
    xc[i * D + k] = float(c);
    v += c * c;
  }
  sd[k] = float(sqrt(v / double(N - 1) + double(eps)));
}

// Row i of C = xc^T xc / (N - 1) (D, D), rewritten in place into the gradient matrix M:
//   M_ii = -[sd_i < 1] std_coeff / (2 D (N - 1) sd_i),  M_ij = 4 cov_coeff C_ij / (D (N - 1)),
//   term_i = std_coeff relu(1 - sd_i) / (2 D) + cov_coeff sum_{j != i} C_ij^2 / D.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    vicreg_covariance_rows(float* __restrict__ C, const float* __restrict__ sd, int64_t D, int64_t N, float std_coeff,
                           float cov_coeff, float* __restrict__ term) {
  __shared__ float red[32];
  const int64_t i = blockIdx.x;
  float* c = C + i * D;
  const float off_scale = 4.0f * cov_coeff / (float(D) * float(N - 1));
  const float sdi = sd[i];
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    if (j == i) {
      c[j] = sdi < 1.0f ? -std_coeff / (2.0f * float(D) * float(N - 1) * sdi) : 0.0f;
    } else {
      s += c[j] * c[j];
      c[j] *= off_scale;
    }
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) term[i] = std_coeff * fmaxf(0.0f, 1.0f - sdi) / (2.0f * float(D)) + cov_coeff * s / float(D);
}

}  // namespace ssl::gpu::kernels
