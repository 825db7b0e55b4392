#pragma once
// Kernels of triplet mining on the device (see ../triplet_mining.cuh). One block per anchor
// mines that anchor's triplets and writes only its own row of R and its own partial sums, so
// nothing is accumulated with atomics and the result does not depend on scheduling.
#include "common.cuh"

namespace ssl::gpu::kernels {

// Sum of a double over the block in a fixed tree (blockDim.x a power of two <= block_reduce_max);
// `shared` holds blockDim.x doubles. Every thread gets the result. Call from all threads.
__device__ inline double block_sum_double(double v, double* shared) {
  __syncthreads();  // shared may still be read by a previous reduction
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  return shared[0];
}

// gram (N, N) = X X^T  ->  dist (N, N):
//   squared Euclidean: max(0, g_ii + g_jj - 2 g_ij);  cosine (rows of X unit): 1 - g_ij.
// The same float expression as ssl::triplet_mining (no contraction into an fma).
SSL_KERNEL void triplet_pairwise_distances(const float* __restrict__ gram, int64_t N, bool cosine,
                                           float* __restrict__ dist) {
  SSL_GRID_STRIDE(e, N * N) {
    const int64_t i = e / N, j = e % N;
    const float g = gram[e];
    dist[e] = cosine ? __fsub_rn(1.0f, g)
                     : fmaxf(0.0f, __fsub_rn(__fadd_rn(gram[i * N + i], gram[j * N + j]), __fmul_rn(2.0f, g)));
  }
}

// Strategies, as ssl::triplet_strategy.
enum : int { mining_batch_all = 0, mining_batch_hard = 1, mining_semi_hard = 2 };

// Anchor a = blockIdx.x over dist (N, N) and labels (N); l(a, p, n) = D_ap - D_an + margin (double).
// Writes row a of R (N, N): R_aj = (number of active terms (l > 0) with j as positive)
//   - (number of active terms with j as negative), so that dL/dD = (R + R^T) / count;
// row_total[a] = sum of the active l, row_count[a] = the terms this anchor adds to the mean:
//   batch_all:  every (p, n), count = active terms;
//   batch_hard: p* = farthest positive, n* = closest negative (ties: lowest index), count 1 if both exist;
//   semi_hard:  per positive p, the closest negative with D_an > D_ap, else the farthest
//               negative (ties: lowest index), count 1 per positive when a negative exists.
// sel (N, N) int32 scratch: semi_hard's chosen negative of (a, p) when active, else -1.
// blockDim.x a power of two <= block_reduce_max.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    triplet_mine_rows(const float* __restrict__ dist, const int64_t* __restrict__ labels, int64_t N, int strategy,
                      float margin, float* __restrict__ R, int32_t* __restrict__ sel, double* __restrict__ row_total,
                      double* __restrict__ row_count) {
  __shared__ double red[block_reduce_max];
  __shared__ float best_v[block_reduce_max];
  __shared__ int64_t best_j[block_reduce_max];
  __shared__ float best_v2[block_reduce_max];
  __shared__ int64_t best_j2[block_reduce_max];
  const int64_t a = blockIdx.x;
  const int64_t ya = labels[a];
  const float* d = dist + a * N;
  float* r = R + a * N;
  const double m = double(margin);
  double total = 0, count = 0;

  if (strategy == mining_batch_hard) {
    // Per thread, then a tree: farthest positive (v, j) and closest negative (v2, j2).
    float pv = 0.0f, nv = 0.0f;
    int64_t pj = -1, nj = -1;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      r[j] = 0.0f;
      if (j == a) continue;
      if (labels[j] == ya) {
        if (pj < 0 || d[j] > pv) pv = d[j], pj = j;
      } else if (nj < 0 || d[j] < nv) {
        nv = d[j], nj = j;
      }
    }
    best_v[threadIdx.x] = pv;
    best_j[threadIdx.x] = pj;
    best_v2[threadIdx.x] = nv;
    best_j2[threadIdx.x] = nj;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
      if (threadIdx.x < half) {
        const int t = threadIdx.x, o = threadIdx.x + half;
        if (best_j[o] >= 0 && (best_j[t] < 0 || best_v[o] > best_v[t] || (best_v[o] == best_v[t] && best_j[o] < best_j[t]))) {
          best_v[t] = best_v[o];
          best_j[t] = best_j[o];
        }
        if (best_j2[o] >= 0 &&
            (best_j2[t] < 0 || best_v2[o] < best_v2[t] || (best_v2[o] == best_v2[t] && best_j2[o] < best_j2[t]))) {
          best_v2[t] = best_v2[o];
          best_j2[t] = best_j2[o];
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const int64_t p = best_j[0], n = best_j2[0];
      if (p >= 0 && n >= 0) {
        count = 1;
        const double l = double(d[p]) - double(d[n]) + m;
        if (l > 0) {
          total = l;
          r[p] = 1.0f;  // p != n: one is a positive, the other a negative
          r[n] = -1.0f;
        }
      }
      row_total[a] = total;
      row_count[a] = count;
    }
    return;
  }

  if (strategy == mining_batch_all) {
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      int64_t terms = 0;
      if (j != a && labels[j] == ya) {  // j as the positive: every negative n
        for (int64_t n = 0; n < N; ++n) {
          if (labels[n] == ya) continue;
          const double l = double(d[j]) - double(d[n]) + m;
          if (l > 0) {
            total += l;
            ++terms;
          }
        }
        count += double(terms);
        r[j] = float(terms);
      } else if (labels[j] != ya) {  // j as the negative: every positive p
        for (int64_t p = 0; p < N; ++p) {
          if (p == a || labels[p] != ya) continue;
          const double l = double(d[p]) - double(d[j]) + m;
          if (l > 0) ++terms;
        }
        r[j] = -float(terms);
      } else {
        r[j] = 0.0f;  // j == a
      }
    }
  } else {  // semi-hard: first each positive picks its negative
    int32_t* s = sel + a * N;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      int32_t chosen = -1;
      if (j != a && labels[j] == ya) {
        const float dap = d[j];
        int64_t outside = -1, farthest = -1;
        for (int64_t n = 0; n < N; ++n) {
          if (labels[n] == ya) continue;
          if (d[n] > dap && (outside < 0 || d[n] < d[outside])) outside = n;
          if (farthest < 0 || d[n] > d[farthest]) farthest = n;
        }
        if (farthest >= 0) {
          const int64_t n = outside >= 0 ? outside : farthest;
          count += 1;
          const double l = double(dap) - double(d[n]) + m;
          if (l > 0) {
            total += l;
            chosen = int32_t(n);
          }
        }
      }
      s[j] = chosen;
    }
    __syncthreads();  // every s[p] of this row written (global writes are visible within the block)
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      if (s[j] >= 0) {
        r[j] = 1.0f;  // an active positive (a positive is never chosen as a negative)
      } else if (labels[j] != ya) {
        int64_t times = 0;  // active positives whose chosen negative is j
        for (int64_t p = 0; p < N; ++p) times += s[p] == j;
        r[j] = -float(times);
      } else {
        r[j] = 0.0f;
      }
    }
  }
  total = block_sum_double(total, red);
  count = block_sum_double(count, red);
  if (threadIdx.x == 0) {
    row_total[a] = total;
    row_count[a] = count;
  }
}

// One block: total = sum row_total, count = sum row_count (fixed trees);
//   value[0] = count > 0 ? total / count : 0,  triplets[0] = count,  scale[0] = count > 0 ? 1/count : 0.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    triplet_mining_finish(const double* __restrict__ row_total, const double* __restrict__ row_count, int64_t N,
                          float* __restrict__ value, int64_t* __restrict__ triplets, float* __restrict__ scale) {
  __shared__ double red[block_reduce_max];
  double t = 0, c = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    t += row_total[i];
    c += row_count[i];
  }
  t = block_sum_double(t, red);
  c = block_sum_double(c, red);
  if (threadIdx.x == 0) {
    const int64_t count = int64_t(c);
    value[0] = count > 0 ? float(t / double(count)) : 0.0f;
    triplets[0] = count;
    scale[0] = count > 0 ? 1.0f / float(count) : 0.0f;
  }
}

// W (N, N) = (R + R^T) * scale[0]: dL/dD symmetrised (D is symmetric), as the CPU's W.
SSL_KERNEL void triplet_symmetric_weights(const float* __restrict__ R, int64_t N, const float* __restrict__ scale,
                                          float* __restrict__ W) {
  const float c = scale[0];
  SSL_GRID_STRIDE(e, N * N) {
    const int64_t i = e / N, j = e % N;
    W[e] = (R[i * N + j] + R[j * N + i]) * c;
  }
}

// Squared Euclidean: dx_i = 2 rowsum(W)_i x_i - 2 (W x)_i; dX holds -2 W X (GEMM) on entry.
// One block per row i; rowsum in double (fixed tree), as the CPU.
SSL_KERNEL void __launch_bounds__(block_reduce_max)
    triplet_add_rowsum(const float* __restrict__ W, const float* __restrict__ x, int64_t N, int64_t D,
                       float* __restrict__ dX) {
  __shared__ double red[block_reduce_max];
  const int64_t i = blockIdx.x;
  double s = 0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) s += double(W[i * N + j]);
  s = block_sum_double(s, red);
  const float f = float(2 * s);
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) dX[i * D + k] += f * x[i * D + k];
}

}  // namespace ssl::gpu::kernels
