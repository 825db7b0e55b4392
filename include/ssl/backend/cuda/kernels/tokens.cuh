#pragma once
// Token plumbing of Vision Transformers (see ../tokens.cuh) and the fused residual join.
#include "common.cuh"

namespace ssl::gpu::kernels {

// to_patches: x (N, C, gh p, gw p) -> (N, gh gw, C p p); otherwise the inverse. One thread per element.
SSL_KERNEL void patchify(const float* __restrict__ src, int64_t N, int64_t C, int64_t p, int64_t gh, int64_t gw,
                         bool to_patches, float* __restrict__ dst) {
  const int64_t P = C * p * p, L = gh * gw, H = gh * p, W = gw * p;
  SSL_GRID_STRIDE(i, N * L * P) {  // i indexes (n, l, col)
    const int64_t col = i % P, l = (i / P) % L, n = i / (P * L);
    const int64_t j = col % p, r = (col / p) % p, c = col / (p * p), gi = l / gw, gj = l % gw;
    const int64_t img = ((n * C + c) * H + gi * p + r) * W + gj * p + j;
    if (to_patches)
      dst[i] = src[img];
    else
      dst[img] = src[i];
  }
}

// y (N, 1 + L, D) = [token; x]
SSL_KERNEL void prepend_token(const float* __restrict__ x, const float* __restrict__ token, int64_t N, int64_t L,
                              int64_t D, float* __restrict__ y) {
  SSL_GRID_STRIDE(i, N * (L + 1) * D) {
    const int64_t c = i % D, t = (i / D) % (L + 1), n = i / (D * (L + 1));
    y[i] = t == 0 ? token[c] : x[(n * L + t - 1) * D + c];
  }
}

// y[n, k] = x[n, idx[n K + k]]
SSL_KERNEL void gather_tokens(const float* __restrict__ x, const int32_t* __restrict__ idx, int64_t N, int64_t T,
                              int64_t K, int64_t D, float* __restrict__ y) {
  SSL_GRID_STRIDE(i, N * K * D) {
    const int64_t c = i % D, nk = i / D, n = nk / K;
    y[i] = x[(n * T + idx[nk]) * D + c];
  }
}

// dx[n, idx[n K + k]] += dy[n, k] (dx zeroed before; atomics only meet for repeated indices)
SSL_KERNEL void scatter_tokens(const float* __restrict__ dy, const int32_t* __restrict__ idx, int64_t N, int64_t T,
                               int64_t K, int64_t D, float* __restrict__ dx) {
  SSL_GRID_STRIDE(i, N * K * D) {
    const int64_t c = i % D, nk = i / D, n = nk / K;
    atomicAdd(dx + (n * T + idx[nk]) * D + c, dy[i]);
  }
}

// y[r] = hidden[r] ? token : x[r] over rows r of D values (mask_tokens)
SSL_KERNEL void mask_tokens(const float* __restrict__ x, const uint8_t* __restrict__ hidden,
                            const float* __restrict__ token, int64_t R, int64_t D, float* __restrict__ y) {
  SSL_GRID_STRIDE(i, R * D) y[i] = hidden[i / D] ? token[i % D] : x[i];
}
// dy[r] = 0 where hidden[r] (the adjoint's row zeroing; the token's gradient is summed apart)
SSL_KERNEL void zero_hidden_rows(const uint8_t* __restrict__ hidden, int64_t R, int64_t D, float* __restrict__ dy) {
  SSL_GRID_STRIDE(i, R * D) if (hidden[i / D]) dy[i] = 0.0f;
}

// y = relu(y + s)
SSL_KERNEL void add_relu(float* __restrict__ y, const float* __restrict__ s, int64_t n) {
  SSL_GRID_STRIDE(i, n) y[i] = fmaxf(y[i] + s[i], 0.0f);
}
// dy *= (y > 0)
SSL_KERNEL void relu_mask(const float* __restrict__ y, float* __restrict__ dy, int64_t n) {
  SSL_GRID_STRIDE(i, n) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
// z = a * b
SSL_KERNEL void multiply(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ z, int64_t n) {
  SSL_GRID_STRIDE(i, n) z[i] = a[i] * b[i];
}

}  // namespace ssl::gpu::kernels
