#pragma once
// Optimizer updates and EMA, one fused pass over each parameter (math as in ssl/optim/*.hpp).
#include "common.cuh"

namespace ssl::gpu::kernels {

// SGD (torch semantics, dampening 0): d = g + wd w; b = mu b + d; w -= lr (nesterov ? d + mu b : b).
// b == nullptr: plain SGD (w -= lr d).
SSL_KERNEL void sgd_update(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ b, int64_t n,
                           float lr, float mu, float wd, bool nesterov) {
  SSL_GRID_STRIDE(j, n) {
    const float d = g[j] + wd * w[j];
    if (!b) {
      w[j] -= lr * d;
    } else {
      const float bj = mu * b[j] + d;
      b[j] = bj;
      w[j] -= lr * (nesterov ? d + mu * bj : bj);
    }
  }
}

// AdamW: w = w decay - step_size m / (sqrt(v) inv_sqrt_bc2 + eps) after the moment updates.
SSL_KERNEL void adamw_update(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, float b1, float b2, float eps, float decay,
                             float step_size, float inv_sqrt_bc2) {
  SSL_GRID_STRIDE(j, n) {
    const float gj = g[j];
    const float mj = b1 * m[j] + (1.0f - b1) * gj;
    const float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
    m[j] = mj;
    v[j] = vj;
    w[j] = w[j] * decay - step_size * mj / (sqrtf(vj) * inv_sqrt_bc2 + eps);
  }
}

// teacher = m teacher + (1 - m) student
SSL_KERNEL void ema_update(float* __restrict__ t, const float* __restrict__ s, int64_t n, float m) {
  const float a = 1.0f - m;
  SSL_GRID_STRIDE(j, n) t[j] = m * t[j] + a * s[j];
}

// ---- LARS and gradient clipping: norms in deterministic stages, no host round trip ----------

/// Blocks of the partial-norm kernels for n elements (fixed for a given n: deterministic sums).
inline unsigned norm_blocks(int64_t n) {
  const unsigned b = grid_for(n);
  return b < 128u ? b : 128u;
}

// Block b of the grid writes partial sums over its grid-stride elements:
//   partial_u[b] = sum (g + wd w)^2,  partial_w[b] = sum w^2 (when w != null; else u = g).
SSL_KERNEL void __launch_bounds__(block_size)
    sq_norm_partials(const float* __restrict__ g, const float* __restrict__ w, float wd, int64_t n,
                     float* __restrict__ partial_u, float* __restrict__ partial_w) {
  __shared__ float red[32];
  float su = 0.0f, sw = 0.0f;
  SSL_GRID_STRIDE(j, n) {
    const float wj = w ? w[j] : 0.0f;
    const float u = g[j] + wd * wj;
    su += u * u;
    sw += wj * wj;
  }
  su = block_sum(su, red);
  sw = block_sum(sw, red);
  if (threadIdx.x == 0) {
    partial_u[blockIdx.x] = su;
    if (partial_w) partial_w[blockIdx.x] = sw;
  }
}

// LARS trust ratio from the partials (summed in double, in order, by one thread):
//   scaled_lr = lr * (eta |w| / |u| if |w| > 0 and |u| > 0, else 1);  ratio_out (optional) = the ratio.
SSL_KERNEL void lars_scaled_lr(const float* __restrict__ partial_u, const float* __restrict__ partial_w, int parts,
                               float eta, float lr, float* __restrict__ scaled_lr, float* __restrict__ ratio_out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double su = 0, sw = 0;
  for (int b = 0; b < parts; ++b) {
    su += partial_u[b];
    sw += partial_w[b];
  }
  const double wn = sqrt(sw), un = sqrt(su);
  const float ratio = (wn > 0 && un > 0) ? float(double(eta) * wn / un) : 1.0f;
  scaled_lr[0] = lr * ratio;
  if (ratio_out) ratio_out[0] = ratio;
}

// LARS momentum step with the device-side scaled_lr (= lr * trust ratio):
//   su = scaled_lr (g + wd w);  b = mu b + su;  w -= nesterov ? mu b + su : b.
SSL_KERNEL void lars_apply(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ b, int64_t n,
                           float wd, float mu, bool nesterov, const float* __restrict__ scaled_lr) {
  const float lr = scaled_lr[0];
  SSL_GRID_STRIDE(j, n) {
    const float su = lr * (g[j] + wd * w[j]);
    const float bj = mu * b[j] + su;
    b[j] = bj;
    w[j] -= nesterov ? mu * bj + su : bj;
  }
}

// One block: norm[0] = sqrt(sum of the n partials), in double (fixed tree over a fixed blockDim);
//   coef[0] = max_norm / (norm + 1e-6) when that is < 1, else 1 (and 1 for a non-finite norm when
//   keep_if_non_finite).
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    clip_coefficient(const float* __restrict__ partial, int64_t n, double max_norm, double* __restrict__ norm,
                     float* __restrict__ coef, bool keep_if_non_finite) {
  __shared__ double red[block_reduce_max];
  double s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += partial[j];
  red[threadIdx.x] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double nrm = sqrt(red[0]);
    const double c = max_norm / (nrm + 1e-6);
    norm[0] = nrm;
    // global clip (keep_if_non_finite): a non-finite norm leaves g alone, the host then throws;
    // per-parameter clip, as the CPU: an infinite norm scales by 0, a NaN norm leaves g
    coef[0] = (keep_if_non_finite && !isfinite(nrm)) || !(c < 1.0) ? 1.0f : float(c);
  }
}

// g *= coef[0] (skipped when coef is exactly 1: nothing to clip)
SSL_KERNEL void scale_by(float* __restrict__ g, int64_t n, const float* __restrict__ coef) {
  const float c = coef[0];
  if (c == 1.0f) return;
  SSL_GRID_STRIDE(j, n) g[j] *= c;
}

}  // namespace ssl::gpu::kernels
