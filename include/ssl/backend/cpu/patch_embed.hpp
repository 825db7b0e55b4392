#pragma once
// Patch and token plumbing for Vision Transformers on the CPU.
//   patchify:   x (N, C, H, W) -> (N, L, C p p), L = (H/p)(W/p) in raster order; patch l = (gi, gj)
//               holds x[n, c, gi p + i, gj p + j] at column (c p + i) p + j, the order of a
//               Conv2d(C, D, k=p, s=p) weight (D, C, p, p) flattened, so patch embedding = linear.
//               (For C = 1 this is also MAE's "row-major within patch" target order.)
//   unpatchify: its inverse (and its adjoint, hence patchify's backward).
//   prepend_token: [cls; tokens] (N, 1 + L, D);  gather_tokens / scatter_tokens: select rows
//               idx[n, k] of every sample (MAE's visible tokens) and the adjoint (zero elsewhere).
//   mask_tokens: y = x with the rows hidden[n L + l] != 0 replaced by a learned token (iBOT / DINOv2
//               student input); mask_tokens_backward: dx = dy with those rows zeroed, dtoken += their sum.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"
#include "../../core/profile.hpp"

namespace ssl::ops {

/// Throws shape_error unless x is (N, C, H, W) with H and W divisible by p.
inline void check_patchify_input(const tensor<cpu>& x, int64_t p, const char* what) {
  check<value_error>(p >= 1, what, ": expected patch size >= 1, got ", p);
  check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 && x.dim(2) > 0 && x.dim(3) > 0, what,
                     ": expected images (N, C, H, W) with H and W multiples of the patch size ", p, ", got ",
                     x.shape());
}

/// x (N, C, H, W) -> patches (N, (H/p)(W/p), C p p).
inline tensor<cpu> patchify(const tensor<cpu>& x, int64_t p) {
  SSL_PROFILE_SCOPE("token gather/scatter");
  check_patchify_input(x, p, "patchify");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), gh = H / p, gw = W / p, P = C * p * p;
  tensor<cpu> out(shape{N, gh * gw, P});
  const float* src = x.data();
  float* dst = out.data();
  parallel_for(0, N, [&](int64_t n) {
    for (int64_t gi = 0; gi < gh; ++gi)
      for (int64_t gj = 0; gj < gw; ++gj) {
        float* row = dst + (n * gh * gw + gi * gw + gj) * P;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < p; ++i)
            std::copy_n(src + ((n * C + c) * H + gi * p + i) * W + gj * p, p, row + (c * p + i) * p);
      }
  });
  return out;
}

/// patches (N, gh gw, C p p) -> images (N, C, gh p, gw p); the inverse of patchify.
inline tensor<cpu> unpatchify(const tensor<cpu>& patches, int64_t channels, int64_t p, int64_t gh, int64_t gw) {
  check<shape_error>(patches.rank() == 3 && patches.dim(1) == gh * gw && patches.dim(2) == channels * p * p,
                     "unpatchify: expected patches (N, ", gh * gw, ", ", channels * p * p, ") for a ", gh, "x", gw,
                     " grid of ", channels, "x", p, "x", p, " patches, got ", patches.shape());
  const int64_t N = patches.dim(0), C = channels, H = gh * p, W = gw * p, P = C * p * p;
  tensor<cpu> x(shape{N, C, H, W});
  const float* src = patches.data();
  float* dst = x.data();
  parallel_for(0, N, [&](int64_t n) {
    for (int64_t gi = 0; gi < gh; ++gi)
      for (int64_t gj = 0; gj < gw; ++gj) {
        const float* row = src + (n * gh * gw + gi * gw + gj) * P;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < p; ++i)
            std::copy_n(row + (c * p + i) * p, p, dst + ((n * C + c) * H + gi * p + i) * W + gj * p);
      }
  });
  return x;
}

/// [token; x]: x (N, L, D), token (D) (any shape with D elements) -> (N, 1 + L, D).
inline tensor<cpu> prepend_token(const tensor<cpu>& x, const tensor<cpu>& token) {
  SSL_PROFILE_SCOPE("token gather/scatter");
  check<shape_error>(x.rank() == 3 && token.numel() == x.dim(2), "prepend_token: expected tokens (N, L, ",
                     token.numel(), ") for a token of ", token.numel(), " values, got ", x.shape());
  const int64_t N = x.dim(0), L = x.dim(1), D = x.dim(2);
  tensor<cpu> y(shape{N, L + 1, D});
  parallel_for(0, N, [&](int64_t n) {
    float* dst = y.data() + n * (L + 1) * D;
    std::copy_n(token.data(), D, dst);
    std::copy_n(x.data() + n * L * D, L * D, dst + D);
  }, 8);
  return y;
}

/// y[n, k] = x[n, idx[n K + k]]: x (N, T, D), idx N*K row indices in [0, T) -> (N, K, D).
inline tensor<cpu> gather_tokens(const tensor<cpu>& x, const std::vector<int32_t>& idx, int64_t K) {
  SSL_PROFILE_SCOPE("token gather/scatter");
  check<shape_error>(x.rank() == 3, "gather_tokens: expected tokens (N, T, D), got ", x.shape());
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  check<shape_error>(int64_t(idx.size()) == N * K, "gather_tokens: expected ", N * K, " indices (", N, " x ", K,
                     "), got ", idx.size());
  tensor<cpu> y(shape{N, K, D});
  parallel_for(0, N, [&](int64_t n) {
    for (int64_t k = 0; k < K; ++k) {
      const int32_t t = idx[size_t(n * K + k)];
      check<value_error>(t >= 0 && t < T, "gather_tokens: index ", t, " outside [0, ", T, ")");
      std::copy_n(x.data() + (n * T + t) * D, D, y.data() + (n * K + k) * D);
    }
  }, 8);
  return y;
}

/// Adjoint of gather_tokens: dx (N, T, D) with dx[n, idx[n K + k]] = dy[n, k], zero elsewhere.
inline tensor<cpu> scatter_tokens(const tensor<cpu>& dy, const std::vector<int32_t>& idx, int64_t T) {
  SSL_PROFILE_SCOPE("token gather/scatter");
  check<shape_error>(dy.rank() == 3, "scatter_tokens: expected tokens (N, K, D), got ", dy.shape());
  const int64_t N = dy.dim(0), K = dy.dim(1), D = dy.dim(2);
  check<shape_error>(int64_t(idx.size()) == N * K, "scatter_tokens: expected ", N * K, " indices, got ", idx.size());
  tensor<cpu> dx(shape{N, T, D}, 0.0f);
  parallel_for(0, N, [&](int64_t n) {
    for (int64_t k = 0; k < K; ++k) {
      float* dst = dx.data() + (n * T + idx[size_t(n * K + k)]) * D;
      const float* src = dy.data() + (n * K + k) * D;
      for (int64_t c = 0; c < D; ++c) dst[c] += src[c];
    }
  }, 8);
  return dx;
}

namespace patch_detail {
template <class B>  // either backend (backend/cuda/tokens.cuh checks its device tensors with it)
inline void check_hidden(const tensor<B>& x, const std::vector<uint8_t>& hidden, int64_t token_numel,
                         const char* what) {
  check<shape_error>(x.rank() == 3 && token_numel == x.dim(2), what, ": expected tokens (N, L, ", token_numel,
                     ") for a token of ", token_numel, " values, got ", x.shape());
  check<shape_error>(int64_t(hidden.size()) == x.dim(0) * x.dim(1), what, ": expected ", x.dim(0) * x.dim(1),
                     " hidden flags (", x.dim(0), " x ", x.dim(1), "), got ", hidden.size());
}
}  // namespace patch_detail

/// y[n, l] = token if hidden[n L + l] else x[n, l]: x (N, L, D), token D values -> (N, L, D).
inline tensor<cpu> mask_tokens(const tensor<cpu>& x, const std::vector<uint8_t>& hidden, const tensor<cpu>& token) {
  SSL_PROFILE_SCOPE("token gather/scatter");
  patch_detail::check_hidden(x, hidden, token.numel(), "mask_tokens");
  const int64_t R = x.dim(0) * x.dim(1), D = x.dim(2);
  tensor<cpu> y(x.shape());
  parallel_for(0, R, [&](int64_t r) {
    std::copy_n(hidden[size_t(r)] ? token.data() : x.data() + r * D, D, y.data() + r * D);
  }, 64);
  return y;
}

/// Adjoint of mask_tokens: dx = dy with the hidden rows zeroed; dtoken (D values) += the sum of the
/// hidden rows of dy (in row order: deterministic).
inline tensor<cpu> mask_tokens_backward(const tensor<cpu>& dy, const std::vector<uint8_t>& hidden, tensor<cpu>& dtoken) {
  SSL_PROFILE_SCOPE("token gather/scatter");
  patch_detail::check_hidden(dy, hidden, dtoken.numel(), "mask_tokens_backward");
  const int64_t R = dy.dim(0) * dy.dim(1), D = dy.dim(2);
  tensor<cpu> dx = dy;
  for (int64_t r = 0; r < R; ++r) {
    if (!hidden[size_t(r)]) continue;
    float* row = dx.data() + r * D;
    for (int64_t c = 0; c < D; ++c) dtoken[c] += row[c];
    std::fill_n(row, D, 0.0f);
  }
  return dx;
}

}  // namespace ssl::ops
