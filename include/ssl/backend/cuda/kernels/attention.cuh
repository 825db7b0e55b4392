#pragma once
// Layout changes of multi-head attention, so that every per-head product is one strided-batched
// GEMM over (N*H) contiguous (T, d) blocks:
//   split_qkv:  qkv (N, T, 3, H, d) -> q, k, v (N, H, T, d)     merge_qkv: the inverse
//   split_heads: x (N, T, H, d) -> (N, H, T, d)                  merge_heads: the inverse
#include "common.cuh"

namespace ssl::gpu::kernels {

struct attention_dims {
  int64_t N, T, H, d;
};

SSL_KERNEL void split_qkv(const float* __restrict__ qkv, attention_dims a, float* __restrict__ q,
                          float* __restrict__ k, float* __restrict__ v) {
  const int64_t D = a.H * a.d, per = a.N * a.T * D;
  SSL_GRID_STRIDE(i, per) {  // i indexes (n, h, t, j)
    const int64_t j = i % a.d, t = (i / a.d) % a.T, h = (i / (a.d * a.T)) % a.H, n = i / (a.d * a.T * a.H);
    const int64_t src = (n * a.T + t) * 3 * D + h * a.d + j;
    q[i] = qkv[src];
    k[i] = qkv[src + D];
    v[i] = qkv[src + 2 * D];
  }
}

SSL_KERNEL void merge_qkv(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                          attention_dims a, float* __restrict__ qkv) {
  const int64_t D = a.H * a.d, per = a.N * a.T * D;
  SSL_GRID_STRIDE(i, per) {
    const int64_t j = i % a.d, t = (i / a.d) % a.T, h = (i / (a.d * a.T)) % a.H, n = i / (a.d * a.T * a.H);
    const int64_t dst = (n * a.T + t) * 3 * D + h * a.d + j;
    qkv[dst] = q[i];
    qkv[dst + D] = k[i];
    qkv[dst + 2 * D] = v[i];
  }
}

// to_heads: x (N, T, H*d) -> y (N, H, T, d); otherwise the inverse.
SSL_KERNEL void permute_heads(const float* __restrict__ x, attention_dims a, bool to_heads, float* __restrict__ y) {
  const int64_t D = a.H * a.d;
  SSL_GRID_STRIDE(i, a.N * a.T * D) {  // i indexes (n, h, t, j)
    const int64_t j = i % a.d, t = (i / a.d) % a.T, h = (i / (a.d * a.T)) % a.H, n = i / (a.d * a.T * a.H);
    const int64_t flat = (n * a.T + t) * D + h * a.d + j;
    if (to_heads)
      y[i] = x[flat];
    else
      y[flat] = x[i];
  }
}

}  // namespace ssl::gpu::kernels
