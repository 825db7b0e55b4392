#pragma once
// Layer norm over the last dimension, one block per row (R, D).
//   forward: mu, var (biased), rstd = 1/sqrt(var + eps), xhat = (x - mu) rstd, y = xhat w + b
//   backward (g = dy w): dx = rstd (g - mean(g) - xhat mean(g xhat))
//   dw = sum_r dy xhat, db = sum_r dy: per chunk of rows, then over the chunks in order.
#include "common.cuh"

namespace ssl::gpu::kernels {

SSL_KERNEL void __launch_bounds__(block_reduce_max) layer_norm_forward(const float* __restrict__ x, const float* __restrict__ w,
                                   const float* __restrict__ b, float eps, int64_t D, float* __restrict__ y,
                                   float* __restrict__ xhat, float* __restrict__ rstd) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * D;
  float s = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += xr[d];
  const float mean = block_sum(s, red) / float(D);
  float v = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float c = xr[d] - mean;
    v += c * c;
  }
  const float inv = rsqrtf(block_sum(v, red) / float(D) + eps);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float h = (xr[d] - mean) * inv;
    if (xhat) xhat[r * D + d] = h;
    y[r * D + d] = h * w[d] + b[d];
  }
  if (rstd && threadIdx.x == 0) rstd[r] = inv;
}

SSL_KERNEL void __launch_bounds__(block_reduce_max) layer_norm_backward_dx(const float* __restrict__ xhat, const float* __restrict__ rstd,
                                       const float* __restrict__ w, const float* __restrict__ dy, int64_t D,
                                       float* __restrict__ dx) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  const float *h = xhat + r * D, *g = dy + r * D;
  float sg = 0.0f, sgh = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float gw = g[d] * w[d];
    sg += gw;
    sgh += gw * h[d];
  }
  const float mean_g = block_sum(sg, red) / float(D);
  const float mean_gh = block_sum(sgh, red) / float(D);
  const float s = rstd[r];
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dx[r * D + d] = s * (g[d] * w[d] - mean_g - h[d] * mean_gh);
}

// Stage 1 of dw, db (two-stage column sums as in linear.cuh): partial[chunk] = (sum dy xhat, sum dy)
// over the chunk's rows, laid out [chunk][2][D].
SSL_KERNEL void layer_norm_params_partial(const float* __restrict__ xhat, const float* __restrict__ dy, int64_t R,
                                          int64_t D, int64_t chunk_rows, float* __restrict__ partial) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  const int64_t r0 = int64_t(blockIdx.y) * chunk_rows, r1 = min(R, r0 + chunk_rows);
  float sw = 0.0f, sb = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const float g = dy[r * D + d];
    sw += g * xhat[r * D + d];
    sb += g;
  }
  partial[(int64_t(blockIdx.y) * 2) * D + d] = sw;
  partial[(int64_t(blockIdx.y) * 2 + 1) * D + d] = sb;
}

// Stage 2: dw += sum over chunks, db += sum over chunks, in chunk order.
SSL_KERNEL void layer_norm_params_finish(const float* __restrict__ partial, int64_t chunks, int64_t D,
                                         float* __restrict__ dw, float* __restrict__ db) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float sw = 0.0f, sb = 0.0f;
  for (int64_t k = 0; k < chunks; ++k) {
    sw += partial[(k * 2) * D + d];
    sb += partial[(k * 2 + 1) * D + d];
  }
  dw[d] += sw;
  db[d] += sb;
}

}  // namespace ssl::gpu::kernels
