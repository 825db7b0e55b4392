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

}  // namespace ssl::gpu::kernels
