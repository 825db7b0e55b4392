#pragma once
// Token-sequence kernels of the op-level ViT / MAE / DINO steps (see ../vit_ops.cuh). One thread per
// output element, grid-stride loops; no atomics (reductions go through column_sums).
#include "common.cuh"

namespace ssl::gpu::kernels {

// y[n, i] = x[n, i] + rows[i], i < TD
SSL_KERNEL void add_rows(const float* __restrict__ x, const float* __restrict__ rows, int64_t N, int64_t TD,
                         float* __restrict__ y) {
  SSL_GRID_STRIDE(i, N * TD) y[i] = x[i] + rows[i % TD];
}

// y (N, K, D) = x[:, begin : begin + K] of x (N, T, D)
SSL_KERNEL void slice_tokens(const float* __restrict__ x, int64_t N, int64_t T, int64_t begin, int64_t K, int64_t D,
                             float* __restrict__ y) {
  SSL_GRID_STRIDE(i, N * K * D) {
    const int64_t c = i % D, k = (i / D) % K, n = i / (D * K);
    y[i] = x[(n * T + begin + k) * D + c];
  }
}

// dx (N, T, D): dy at rows [begin, begin + K), zero elsewhere
SSL_KERNEL void unslice_tokens(const float* __restrict__ dy, int64_t N, int64_t T, int64_t begin, int64_t K, int64_t D,
                               float* __restrict__ dx) {
  SSL_GRID_STRIDE(i, N * T * D) {
    const int64_t c = i % D, t = (i / D) % T, n = i / (D * T);
    const int64_t k = t - begin;
    dx[i] = (k >= 0 && k < K) ? dy[(n * K + k) * D + c] : 0.0f;
  }
}

// full (N, 1 + L, D): row 0 = e[n, 0]; row 1 + l = e[n, 1 + r] if r = restore[n L + l] < K, else mask token
SSL_KERNEL void unshuffle_tokens(const float* __restrict__ e, const int32_t* __restrict__ restore,
                                 const float* __restrict__ mask_token, int64_t N, int64_t L, int64_t K, int64_t D,
                                 float* __restrict__ full) {
  SSL_GRID_STRIDE(i, N * (1 + L) * D) {
    const int64_t c = i % D, t = (i / D) % (1 + L), n = i / (D * (1 + L));
    if (t == 0) {
      full[i] = e[n * (1 + K) * D + c];
    } else {
      const int64_t r = restore[n * L + t - 1];
      full[i] = r < K ? e[(n * (1 + K) + 1 + r) * D + c] : mask_token[c];
    }
  }
}

// Adjoint of unshuffle_tokens, part 1: de[n, 0] = g[n, 0]; de[n, 1 + r] = g[n, 1 + l] for the kept
// patch l with restore[n L + l] = r. Launched over (N, L, D): the thread of hidden patch l writes
// g[n, 1 + l] into hidden (N L, D) (zero at kept patches), whose column sums are the mask-token gradient.
SSL_KERNEL void unshuffle_tokens_backward(const float* __restrict__ g, const int32_t* __restrict__ restore, int64_t N,
                                          int64_t L, int64_t K, int64_t D, float* __restrict__ de,
                                          float* __restrict__ hidden) {
  SSL_GRID_STRIDE(i, N * L * D) {
    const int64_t c = i % D, nl = i / D, l = nl % L, n = nl / L;
    const int64_t r = restore[nl];
    const float v = g[(n * (1 + L) + 1 + l) * D + c];
    if (r < K) {
      de[(n * (1 + K) + 1 + r) * D + c] = v;
      hidden[i] = 0.0f;
    } else {
      hidden[i] = v;
    }
    if (l == 0) de[n * (1 + K) * D + c] = g[n * (1 + L) * D + c];
  }
}

// x[n, i] *= scale[n], i < R (drop_path's per-sample keep scale), in place
SSL_KERNEL void scale_rows(float* __restrict__ x, const float* __restrict__ scale, int64_t R, int64_t n) {
  SSL_GRID_STRIDE(i, n) x[i] *= scale[i / R];
}

// y (N, T + R, D): rows [0, at) and [at + R, T + R) from x (N, T, D), rows [at, at + R) the shared tokens (R, D)
SSL_KERNEL void insert_tokens(const float* __restrict__ x, const float* __restrict__ tokens, int64_t N, int64_t T,
                              int64_t at, int64_t R, int64_t D, float* __restrict__ y) {
  SSL_GRID_STRIDE(i, N * (T + R) * D) {
    const int64_t c = i % D, t = (i / D) % (T + R), n = i / (D * (T + R));
    if (t < at)
      y[i] = x[(n * T + t) * D + c];
    else if (t < at + R)
      y[i] = tokens[(t - at) * D + c];
    else
      y[i] = x[(n * T + t - R) * D + c];
  }
}

// y (N, T - R, D) = x (N, T, D) without rows [at, at + R)
SSL_KERNEL void remove_tokens(const float* __restrict__ x, int64_t N, int64_t T, int64_t at, int64_t R, int64_t D,
                              float* __restrict__ y) {
  const int64_t K = T - R;
  SSL_GRID_STRIDE(i, N * K * D) {
    const int64_t c = i % D, t = (i / D) % K, n = i / (D * K);
    y[i] = x[(n * T + (t < at ? t : t + R)) * D + c];
  }
}

// y[m, c] = x[m, c] gamma[c] (LayerScale), m < M rows of D channels
SSL_KERNEL void scale_channels(const float* __restrict__ x, const float* __restrict__ gamma, int64_t D, int64_t n,
                               float* __restrict__ y) {
  SSL_GRID_STRIDE(i, n) y[i] = x[i] * gamma[i % D];
}

// dx = dy gamma and prod = x dy (summed over rows into dgamma by column_sums afterwards)
SSL_KERNEL void scale_channels_backward(const float* __restrict__ x, const float* __restrict__ dy,
                                        const float* __restrict__ gamma, int64_t D, int64_t n, float* __restrict__ dx,
                                        float* __restrict__ prod) {
  SSL_GRID_STRIDE(i, n) {
    dx[i] = dy[i] * gamma[i % D];
    prod[i] = x[i] * dy[i];
  }
}

}  // namespace ssl::gpu::kernels
