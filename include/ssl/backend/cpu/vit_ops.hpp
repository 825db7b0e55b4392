#pragma once
// Token-sequence ops of the op-level ViT / MAE / DINO training steps (backend/cuda/parity/), on the
// CPU: the reference of their CUDA overloads in backend/cuda/vit_ops.cuh. All tensors are
// row-major token sequences x (N, T, D).
//   residual_add(x, y)               z = x + y (same shapes)
//   add_rows(x, rows)                y[n] = x[n] + rows, rows (T, D) (any shape of T D values): position
//                                    embeddings broadcast over the batch
//   sum_batch(dy, acc)               acc (T D values) += sum_n dy[n]  (sample order: deterministic);
//                                    the adjoint of add_rows for the rows
//   add_range(dst, d0, src, s0, n)   dst[d0 .. d0+n) += alpha src[s0 .. s0+n)  (flat ranges)
//   slice_tokens(x, b, k)            x[:, b : b+k]  -> (N, k, D);  unslice_tokens: its adjoint (zeros elsewhere)
//   unshuffle_tokens(e, restore, K, mask_token)
//                                    MAE decoder input: e (N, 1+K, D) -> full (N, 1+L, D), full[n,0] = e[n,0],
//                                    full[n,1+l] = e[n,1+r] if r = restore[n L + l] < K, else mask_token (D)
//   unshuffle_tokens_backward(g, restore, K, dmask)
//                                    de (N, 1+K, D) (kept rows and [CLS] back to their rows); dmask (D) += sum of
//                                    g over the hidden positions
//   insert_tokens(x, tokens, at)     (N, T, D) -> (N, T + R, D): the R shared tokens (R D values) as rows
//                                    [at, at + R) of every sample (ViT registers after [CLS])
//   remove_tokens(x, at, R)          (N, T, D) -> (N, T - R, D) without rows [at, at + R); the adjoint of
//                                    insert_tokens for x (and insert_tokens with zero tokens is its adjoint)
//   scale_channels(x, gamma)         y[..., c] = x[..., c] gamma[c]  (LayerScale), x (..., D)
//   scale_channels_backward(x, dy, gamma, dgamma)
//                                    dx = dy gamma;  dgamma (D) += sum over rows of x dy
#include <algorithm>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"

namespace ssl::ops {

// The shape / index checks of every op, shared by both backends (X: tensor<cpu> or tensor<cuda>).
namespace vit_detail {
template <class X>
void check_tokens(const X& x, const char* what) {
  check<shape_error>(x.rank() == 3, what, ": expected tokens (N, T, D), got ", x.shape());
}
inline void check_restore(const std::vector<int32_t>& restore, int64_t N, int64_t L, int64_t K, const char* what) {
  check<shape_error>(int64_t(restore.size()) == N * L, what, ": expected ", N * L, " restore indices (", N, " x ", L,
                     "), got ", restore.size());
  check<value_error>(K >= 0 && K <= L, what, ": expected 0 <= kept tokens <= ", L, " patches, got ", K);
  // each sample's L indices must be a permutation of [0, L) (an index repeated would leave a token unwritten)
  std::vector<char> seen(static_cast<size_t>(L));
  for (int64_t n = 0; n < N; ++n) {
    std::fill(seen.begin(), seen.end(), char(0));
    for (int64_t j = 0; j < L; ++j) {
      const int32_t r = restore[size_t(n * L + j)];
      check<value_error>(r >= 0 && r < L, what, ": restore index ", r, " outside [0, ", L, ")");
      check<value_error>(!seen[size_t(r)], what, ": restore indices of sample ", n, " are not a permutation of [0, ", L,
                         "): ", r, " appears twice");
      seen[size_t(r)] = 1;
    }
  }
}
template <class X>
void check_add_rows(const X& x, const X& rows) {
  check_tokens(x, "add_rows");
  check<shape_error>(rows.numel() == x.dim(1) * x.dim(2), "add_rows: expected ", x.dim(1) * x.dim(2), " row values (",
                     x.dim(1), " x ", x.dim(2), "), got ", rows.shape());
}
template <class X>
void check_sum_batch(const X& dy, const X& acc) {
  check_tokens(dy, "sum_batch");
  check<shape_error>(acc.numel() == dy.dim(1) * dy.dim(2), "sum_batch: expected an accumulator of ",
                     dy.dim(1) * dy.dim(2), " values, got ", acc.shape());
}
template <class X>
void check_add_range(const X& dst, int64_t d0, const X& src, int64_t s0, int64_t n) {
  check<shape_error>(d0 >= 0 && s0 >= 0 && n >= 0 && d0 + n <= dst.numel() && s0 + n <= src.numel(),
                     "add_range: ranges [", d0, ", ", d0 + n, ") of ", dst.shape(), " and [", s0, ", ", s0 + n, ") of ",
                     src.shape(), " do not fit");
}
/// Rows [begin, begin + count) of x (N, T, D) must exist (slice_tokens, remove_tokens).
template <class X>
void check_token_range(const X& x, int64_t begin, int64_t count, const char* what) {
  check_tokens(x, what);
  check<shape_error>(begin >= 0 && count >= 0 && begin + count <= x.dim(1), what, ": tokens [", begin, ", ",
                     begin + count, ") outside the ", x.dim(1), " tokens of ", x.shape());
}
template <class X>
void check_unslice(const X& dy, int64_t T, int64_t begin) {
  check_tokens(dy, "unslice_tokens");
  check<shape_error>(begin >= 0 && begin + dy.dim(1) <= T, "unslice_tokens: tokens [", begin, ", ", begin + dy.dim(1),
                     ") do not fit in ", T);
}
/// Returns L, the patches per sample.
template <class X>
int64_t check_unshuffle(const X& e, const std::vector<int32_t>& restore, int64_t K, const X& mask_token) {
  check_tokens(e, "unshuffle_tokens");
  const int64_t N = e.dim(0);
  check<shape_error>(e.dim(1) == 1 + K && mask_token.numel() == e.dim(2), "unshuffle_tokens: expected e (N, ", 1 + K,
                     ", ", mask_token.numel(), ") for ", K, " kept tokens and a mask token of ", mask_token.numel(),
                     ", got ", e.shape());
  const int64_t L = N ? int64_t(restore.size()) / N : 0;
  check_restore(restore, N, L, K, "unshuffle_tokens");
  return L;
}
template <class X>
void check_unshuffle_backward(const X& g, const std::vector<int32_t>& restore, int64_t K, const X& dmask) {
  check_tokens(g, "unshuffle_tokens_backward");
  check<shape_error>(dmask.numel() == g.dim(2), "unshuffle_tokens_backward: expected a mask-token gradient of ",
                     g.dim(2), " values, got ", dmask.shape());
  check_restore(restore, g.dim(0), g.dim(1) - 1, K, "unshuffle_tokens_backward");
}
/// Returns R, the tokens inserted.
template <class X>
int64_t check_insert(const X& x, const X& tokens, int64_t at) {
  check_tokens(x, "insert_tokens");
  const int64_t D = x.dim(2), R = D ? tokens.numel() / D : 0;
  check<shape_error>(D > 0 && tokens.numel() == R * D, "insert_tokens: expected whole tokens of ", D,
                     " values, got ", tokens.shape());
  check<shape_error>(at >= 0 && at <= x.dim(1), "insert_tokens: position ", at, " outside the ", x.dim(1),
                     " tokens of ", x.shape());
  return R;
}
/// Returns D, the channels.
template <class X>
int64_t check_channels(const X& x, const X& gamma, const char* what) {
  check<shape_error>(gamma.rank() == 1 && x.rank() >= 1 && x.dim(x.rank() - 1) == gamma.dim(0), what,
                     ": expected x (..., D) and gamma (D), got ", x.shape(), " and ", gamma.shape());
  return gamma.dim(0);
}
}  // namespace vit_detail

/// z = x + y (same shapes): the residual join of a pre-norm block.
inline tensor<cpu> residual_add(const tensor<cpu>& x, const tensor<cpu>& y) {
  expect_shape(y, x.shape(), "residual_add y");
  tensor<cpu> z = x;
  z.vec() += y.vec();
  return z;
}

/// y[n] = x[n] + rows: x (N, T, D), rows: T * D values.
inline tensor<cpu> add_rows(const tensor<cpu>& x, const tensor<cpu>& rows) {
  vit_detail::check_add_rows(x, rows);
  const int64_t N = x.dim(0), TD = x.dim(1) * x.dim(2);
  tensor<cpu> y(x.shape());
  parallel_for(0, N, [&](int64_t n) {
    const float* a = x.data() + n * TD;
    float* o = y.data() + n * TD;
    for (int64_t i = 0; i < TD; ++i) o[i] = a[i] + rows[i];
  });
  return y;
}

/// acc (T D values) += sum over n of dy[n]; dy (N, T, D).
inline void sum_batch(const tensor<cpu>& dy, tensor<cpu>& acc) {
  vit_detail::check_sum_batch(dy, acc);
  const int64_t N = dy.dim(0), TD = dy.dim(1) * dy.dim(2);
  for (int64_t n = 0; n < N; ++n) acc.vec() += const_vector_map(dy.data() + n * TD, TD);
}

/// dst[d0 + i] += alpha * src[s0 + i] for i < n (flat element ranges).
inline void add_range(tensor<cpu>& dst, int64_t d0, const tensor<cpu>& src, int64_t s0, int64_t n, float alpha = 1.0f) {
  vit_detail::check_add_range(dst, d0, src, s0, n);
  for (int64_t i = 0; i < n; ++i) dst[d0 + i] += alpha * src[s0 + i];
}

/// x[:, begin : begin + count] -> (N, count, D).
inline tensor<cpu> slice_tokens(const tensor<cpu>& x, int64_t begin, int64_t count) {
  vit_detail::check_token_range(x, begin, count, "slice_tokens");
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  tensor<cpu> y(shape{N, count, D});
  for (int64_t n = 0; n < N; ++n) std::copy_n(x.data() + (n * T + begin) * D, count * D, y.data() + n * count * D);
  return y;
}

/// Adjoint of slice_tokens: dy (N, count, D) -> (N, T, D), zero outside [begin, begin + count).
inline tensor<cpu> unslice_tokens(const tensor<cpu>& dy, int64_t T, int64_t begin) {
  vit_detail::check_unslice(dy, T, begin);
  const int64_t N = dy.dim(0), K = dy.dim(1), D = dy.dim(2);
  tensor<cpu> dx(shape{N, T, D}, 0.0f);
  for (int64_t n = 0; n < N; ++n) std::copy_n(dy.data() + n * K * D, K * D, dx.data() + (n * T + begin) * D);
  return dx;
}

/// x (N, T, D) -> (N, T + R, D) with the R shared tokens (R D values, e.g. (1, R, D)) at rows [at, at + R).
inline tensor<cpu> insert_tokens(const tensor<cpu>& x, const tensor<cpu>& tokens, int64_t at) {
  const int64_t R = vit_detail::check_insert(x, tokens, at);
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  tensor<cpu> y(shape{N, T + R, D});
  for (int64_t n = 0; n < N; ++n) {
    const float* src = x.data() + n * T * D;
    float* dst = y.data() + n * (T + R) * D;
    std::copy_n(src, at * D, dst);
    std::copy_n(tokens.data(), R * D, dst + at * D);
    std::copy_n(src + at * D, (T - at) * D, dst + (at + R) * D);
  }
  return y;
}

/// x (N, T, D) -> (N, T - count, D) without rows [at, at + count).
inline tensor<cpu> remove_tokens(const tensor<cpu>& x, int64_t at, int64_t count) {
  vit_detail::check_token_range(x, at, count, "remove_tokens");
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  tensor<cpu> y(shape{N, T - count, D});
  for (int64_t n = 0; n < N; ++n) {
    const float* src = x.data() + n * T * D;
    float* dst = y.data() + n * (T - count) * D;
    std::copy_n(src, at * D, dst);
    std::copy_n(src + (at + count) * D, (T - at - count) * D, dst + at * D);
  }
  return y;
}

/// y[..., c] = x[..., c] gamma[c]: LayerScale (Touvron et al. 2021, DINOv2), x (..., D), gamma (D).
inline tensor<cpu> scale_channels(const tensor<cpu>& x, const tensor<cpu>& gamma) {
  const int64_t D = vit_detail::check_channels(x, gamma, "scale_channels");
  tensor<cpu> y(x.shape());
  const int64_t M = D ? x.numel() / D : 0;
  const_matrix_map xm(x.data(), M, D);
  matrix_map ym(y.data(), M, D);
  ym.noalias() = xm * const_vector_map(gamma.data(), D).asDiagonal();
  return y;
}

/// Backward of scale_channels: returns dx = dy gamma; dgamma (D) += sum over the rows of x dy.
inline tensor<cpu> scale_channels_backward(const tensor<cpu>& x, const tensor<cpu>& dy, const tensor<cpu>& gamma,
                                           tensor<cpu>& dgamma) {
  const int64_t D = vit_detail::check_channels(x, gamma, "scale_channels_backward");
  expect_shape(dy, x.shape(), "scale_channels_backward dy");
  expect_shape(dgamma, gamma.shape(), "scale_channels_backward dgamma");
  const int64_t M = D ? x.numel() / D : 0;
  const_matrix_map xm(x.data(), M, D), dym(dy.data(), M, D);
  vector_map(dgamma.data(), D) += xm.cwiseProduct(dym).colwise().sum().transpose();
  return scale_channels(dy, gamma);
}

/// e (N, 1 + K, D) -> (N, 1 + L, D) in patch order, mask_token (D values) at the hidden patches.
inline tensor<cpu> unshuffle_tokens(const tensor<cpu>& e, const std::vector<int32_t>& restore, int64_t K,
                                    const tensor<cpu>& mask_token) {
  const int64_t L = vit_detail::check_unshuffle(e, restore, K, mask_token);
  const int64_t N = e.dim(0), D = e.dim(2);
  tensor<cpu> full(shape{N, 1 + L, D});
  parallel_for(0, N, [&](int64_t n) {
    const float* src = e.data() + n * (1 + K) * D;
    float* dst = full.data() + n * (1 + L) * D;
    std::copy_n(src, D, dst);
    for (int64_t l = 0; l < L; ++l) {
      const int32_t r = restore[size_t(n * L + l)];
      std::copy_n(r < K ? src + (1 + r) * D : mask_token.data(), D, dst + (1 + l) * D);
    }
  });
  return full;
}

/// Adjoint of unshuffle_tokens: g (N, 1 + L, D) -> de (N, 1 + K, D); dmask (D) += g summed over hidden patches.
inline tensor<cpu> unshuffle_tokens_backward(const tensor<cpu>& g, const std::vector<int32_t>& restore, int64_t K,
                                             tensor<cpu>& dmask) {
  vit_detail::check_unshuffle_backward(g, restore, K, dmask);
  const int64_t N = g.dim(0), L = g.dim(1) - 1, D = g.dim(2);
  tensor<cpu> de(shape{N, 1 + K, D}, 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    const float* src = g.data() + n * (1 + L) * D;
    float* dst = de.data() + n * (1 + K) * D;
    std::copy_n(src, D, dst);
    for (int64_t l = 0; l < L; ++l) {
      const int32_t r = restore[size_t(n * L + l)];
      if (r < K)
        std::copy_n(src + (1 + l) * D, D, dst + (1 + r) * D);
      else
        for (int64_t c = 0; c < D; ++c) dmask[c] += src[(1 + l) * D + c];
    }
  }
  return de;
}

}  // namespace ssl::ops
