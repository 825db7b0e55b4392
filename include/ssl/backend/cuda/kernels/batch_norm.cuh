#pragma once
// Batch norm, one block per channel c over its M = N * inner values (x: (N, C, inner)).
//   forward: shift = x[0, c, 0]; mean and biased var from sums of (x - shift) (against cancellation);
//            y = gamma (x - mu) invstd + beta, ReLU fused when asked.
//   backward: g = dy masked by (gamma xhat + beta > 0) when ReLU is fused;
//            dbeta += sum g, dgamma += sum g xhat, dx = gamma invstd (g - mean g - xhat mean(g xhat)).
#include "common.cuh"

namespace ssl::gpu::kernels {

SSL_KERNEL void __launch_bounds__(block_reduce_max) batch_norm_forward_train(const float* __restrict__ x, const float* __restrict__ gamma,
                                         const float* __restrict__ beta, int64_t N, int64_t C, int64_t inner,
                                         float eps, bool fuse_relu, float* __restrict__ y, float* __restrict__ mean,
                                         float* __restrict__ var, float* __restrict__ invstd) {
  __shared__ float red[32];
  const int64_t c = blockIdx.x, M = N * inner, S = C * inner;
  const float shift = x[c * inner];
  double s = 0, ss = 0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const int64_t n = i / inner, k = i - n * inner;
    const double d = double(x[n * S + c * inner + k] - shift);
    s += d;
    ss += d * d;
  }
  const double sum = double(block_sum(float(s), red)), sumsq = double(block_sum(float(ss), red));
  const double md = sum / double(M);
  const double v = fmax(sumsq / double(M) - md * md, 0.0);
  const float mu = float(md + shift), is = float(1.0 / sqrt(v + double(eps)));
  if (threadIdx.x == 0) {
    mean[c] = mu;
    var[c] = float(v);
    invstd[c] = is;
  }
  const float scale = gamma[c] * is, offset = beta[c] - mu * scale;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const int64_t n = i / inner, k = i - n * inner, at = n * S + c * inner + k;
    const float o = x[at] * scale + offset;
    y[at] = fuse_relu ? fmaxf(o, 0.0f) : o;
  }
}

// One thread per element: y = gamma (x - mean) / sqrt(var + eps) + beta (+ ReLU).
SSL_KERNEL void batch_norm_forward_eval(const float* __restrict__ x, const float* __restrict__ gamma,
                                        const float* __restrict__ beta, const float* __restrict__ rmean,
                                        const float* __restrict__ rvar, int64_t C, int64_t inner, int64_t total,
                                        float eps, bool fuse_relu, float* __restrict__ y) {
  SSL_GRID_STRIDE(i, total) {
    const int64_t c = (i / inner) % C;
    const float scale = gamma[c] * rsqrtf(rvar[c] + eps);
    const float o = (x[i] - rmean[c]) * scale + beta[c];
    y[i] = fuse_relu ? fmaxf(o, 0.0f) : o;
  }
}

SSL_KERNEL void __launch_bounds__(block_reduce_max) batch_norm_backward_train(const float* __restrict__ dy, const float* __restrict__ x,
                                          const float* __restrict__ mean, const float* __restrict__ invstd,
                                          const float* __restrict__ gamma, const float* __restrict__ beta,
                                          int64_t N, int64_t C, int64_t inner, bool fuse_relu,
                                          float* __restrict__ dx, float* __restrict__ dgamma,
                                          float* __restrict__ dbeta) {
  __shared__ float red[32];
  const int64_t c = blockIdx.x, M = N * inner, S = C * inner;
  const float mu = mean[c], is = invstd[c];
  const float zs = gamma[c] * is, zo = beta[c] - mu * zs;  // ReLU input z = x zs + zo
  float sg = 0.0f, sgx = 0.0f;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const int64_t n = i / inner, k = i - n * inner, at = n * S + c * inner + k;
    const float xv = x[at];
    const float g = (!fuse_relu || xv * zs + zo > 0.0f) ? dy[at] : 0.0f;
    sg += g;
    sgx += g * (xv - mu);
  }
  sg = block_sum(sg, red);
  sgx = block_sum(sgx, red) * is;  // sum g xhat
  if (threadIdx.x == 0) {
    dbeta[c] += sg;
    dgamma[c] += sgx;
  }
  const float mg = sg / float(M), mgx = sgx / float(M), k = gamma[c] * is;
  const float a = k, b = -k * (mg - mu * is * mgx), cx = -k * is * mgx;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    const int64_t n = i / inner, kk = i - n * inner, at = n * S + c * inner + kk;
    const float xv = x[at];
    const float g = (!fuse_relu || xv * zs + zo > 0.0f) ? dy[at] : 0.0f;
    dx[at] = g * a + xv * cx + b;
  }
}

SSL_KERNEL void batch_norm_update_running(float* __restrict__ rmean, float* __restrict__ rvar,
                                          const float* __restrict__ mean, const float* __restrict__ var, int64_t C,
                                          float momentum, float unbias) {
  SSL_GRID_STRIDE(c, C) {
    rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean[c];
    rvar[c] = (1.0f - momentum) * rvar[c] + momentum * var[c] * unbias;
  }
}

}  // namespace ssl::gpu::kernels
