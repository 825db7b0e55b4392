#pragma once
// Convolution as im2col + one GEMM over the whole batch.
//   col: (K, N*P), K = C*KH*KW (row k = (c*KH + ki)*KW + kj), column n*P + p, p = oh*OW + ow
//   col[k, n*P + p] = x[n, c, oh*s - pad + ki, ow*s - pad + kj] (0 outside)
//   out (O, N*P) = W (O, K) col;  y[n, o, p] = out[o, n*P + p] + b[o]
// Backward: dyp (O, N*P) = dy permuted; dW += dyp col^T; dcol = W^T dyp; dx = col2im(dcol)
// (col2im gathers: each input pixel sums the columns that read it, no atomics).
#include "common.cuh"

namespace ssl::gpu::kernels {

struct conv_dims {
  int64_t N, C, H, W, O, KH, KW, stride, pad, OH, OW;
};

SSL_KERNEL void im2col(const float* __restrict__ x, conv_dims d, float* __restrict__ col) {
  const int64_t P = d.OH * d.OW, cols = d.N * P, total = d.C * d.KH * d.KW * cols;
  SSL_GRID_STRIDE(i, total) {
    const int64_t k = i / cols, q = i - k * cols;
    const int64_t n = q / P, p = q - n * P;
    const int64_t oh = p / d.OW, ow = p - oh * d.OW;
    const int64_t kj = k % d.KW, ki = (k / d.KW) % d.KH, c = k / (d.KW * d.KH);
    const int64_t ih = oh * d.stride - d.pad + ki, iw = ow * d.stride - d.pad + kj;
    col[i] = (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) ? x[((n * d.C + c) * d.H + ih) * d.W + iw] : 0.0f;
  }
}

SSL_KERNEL void col2im(const float* __restrict__ dcol, conv_dims d, float* __restrict__ dx) {
  const int64_t P = d.OH * d.OW, cols = d.N * P, total = d.N * d.C * d.H * d.W;
  SSL_GRID_STRIDE(i, total) {
    const int64_t iw = i % d.W, ih = (i / d.W) % d.H, c = (i / (d.W * d.H)) % d.C, n = i / (d.W * d.H * d.C);
    float s = 0.0f;
    for (int64_t ki = 0; ki < d.KH; ++ki) {
      const int64_t th = ih + d.pad - ki;  // = oh * stride
      if (th < 0 || th % d.stride) continue;
      const int64_t oh = th / d.stride;
      if (oh >= d.OH) continue;
      for (int64_t kj = 0; kj < d.KW; ++kj) {
        const int64_t tw = iw + d.pad - kj;
        if (tw < 0 || tw % d.stride) continue;
        const int64_t ow = tw / d.stride;
        if (ow >= d.OW) continue;
        s += dcol[((c * d.KH + ki) * d.KW + kj) * cols + n * P + oh * d.OW + ow];
      }
    }
    dx[i] = s;
  }
}

// y[n, o, p] = out[o, n*P + p] + (b ? b[o] : 0)
SSL_KERNEL void unpermute_add_bias(const float* __restrict__ out, const float* __restrict__ b, int64_t N, int64_t O,
                                   int64_t P, float* __restrict__ y) {
  SSL_GRID_STRIDE(i, N * O * P) {
    const int64_t p = i % P, o = (i / P) % O, n = i / (P * O);
    y[i] = out[o * N * P + n * P + p] + (b ? b[o] : 0.0f);
  }
}

// dyp[o, n*P + p] = dy[n, o, p]
SSL_KERNEL void permute_channels_first(const float* __restrict__ dy, int64_t N, int64_t O, int64_t P,
                                       float* __restrict__ dyp) {
  SSL_GRID_STRIDE(i, N * O * P) {
    const int64_t q = i % (N * P), o = i / (N * P);
    const int64_t n = q / P, p = q - n * P;
    dyp[i] = dy[(n * O + o) * P + p];
  }
}

// acc[r] += sum_j m[r, j]; one block per row.
SSL_KERNEL void __launch_bounds__(block_reduce_max) row_sums_add(const float* __restrict__ m, int64_t cols, float* __restrict__ acc) {
  __shared__ float red[32];
  const int64_t r = blockIdx.x;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += m[r * cols + j];
  s = block_sum(s, red);
  if (threadIdx.x == 0) acc[r] += s;
}

}  // namespace ssl::gpu::kernels
