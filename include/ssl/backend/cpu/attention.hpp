#pragma once
// Multi-head scaled dot-product self-attention on the CPU (the core of timm's Attention,
// between its qkv and proj linears).
//   qkv: (N, T, 3D), laid out as (N, T, 3, H, d) with d = D / H (timm's reshape):
//        q_h = qkv[n, :, 0*D + h*d : ...], k_h = qkv[n, :, D + h*d : ...], v_h = qkv[n, :, 2D + h*d : ...]
//   S_h = scale q_h k_h^T (T, T),  P_h = softmax_rows(S_h),  O_h = P_h v_h (T, d)
//   out[n, t, h*d + j] = O_h[t, j]  -> (N, T, D)   (heads concatenated, as timm's transpose + reshape)
// Backward, per (n, h):  dV = P^T dO,  dP = dO V^T,  dS = P o (dP - rowsum(P o dP)),
//   dQ = scale dS K,  dK = scale dS^T Q.
// Every product is one ssl::ops::gemm on strided views of qkv; work is split over N*H.
// The only scratch memory is one (T, T) buffer per thread (reused across calls).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../core/profile.hpp"
#include "gemm.hpp"

namespace ssl::ops {

namespace detail {
/// Per-thread scratch of at least n floats, reused across calls (no allocation in steady state).
inline float* attention_scratch(int64_t n) {
  thread_local std::vector<float> buf;
  if (int64_t(buf.size()) < n) buf.resize(size_t(n));
  return buf.data();
}
/// Row-wise softmax of a (T, T) block, in place.
inline void softmax_rows(float* s, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = s + r * cols;
    const float m = *std::max_element(row, row + cols);
    float sum = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      row[c] = std::exp(row[c] - m);
      sum += row[c];
    }
    const float inv = 1.0f / sum;
    for (int64_t c = 0; c < cols; ++c) row[c] *= inv;
  }
}
}  // namespace detail

/// Throws shape_error unless qkv is (N, T, 3D) with D divisible by heads.
inline void check_attention_input(const tensor<cpu>& qkv, int64_t heads, const char* what) {
  check<value_error>(heads >= 1, what, ": expected heads >= 1, got ", heads);
  check<shape_error>(qkv.rank() == 3 && qkv.dim(2) % (3 * heads) == 0 && qkv.dim(2) > 0, what,
                     ": expected qkv of shape (N, T, 3 * D) with D divisible by ", heads, " heads, got ", qkv.shape());
}

/// out (N, T, D) = attention(qkv). When `probs` is given it receives P: (N, H, T, T) (needed by
/// backward, and the attention maps DINO visualises).
inline tensor<cpu> attention_forward(const tensor<cpu>& qkv, int64_t heads, float scale, tensor<cpu>* probs = nullptr) {
  SSL_PROFILE_SCOPE("attention softmax (fwd)");
  check_attention_input(qkv, heads, "attention_forward");
  const int64_t N = qkv.dim(0), T = qkv.dim(1), D = qkv.dim(2) / 3, d = D / heads;
  tensor<cpu> out(shape{N, T, D});
  if (probs && !(probs->shape() == shape{N, heads, T, T})) *probs = tensor<cpu>(shape{N, heads, T, T});
  const float* base = qkv.data();
  float* o = out.data();
  float* pall = probs ? probs->data() : nullptr;
  parallel_for(0, N * heads, [&](int64_t nh) {
    const int64_t n = nh / heads, h = nh % heads;
    const float* q = base + n * T * 3 * D + h * d;
    const float* k = q + D;
    const float* v = q + 2 * D;
    float* p = pall ? pall + nh * T * T : detail::attention_scratch(T * T);
    gemm(cpu{}, trans::no, trans::yes, T, T, d, scale, q, 3 * D, k, 3 * D, 0.0f, p, T);
    detail::softmax_rows(p, T, T);
    gemm(cpu{}, trans::no, trans::no, T, d, T, 1.0f, p, T, v, 3 * D, 0.0f, o + n * T * D + h * d, D);
  });
  return out;
}

/// Backward of attention_forward from its input qkv and saved P: returns dqkv (N, T, 3D).
inline tensor<cpu> attention_backward(const tensor<cpu>& qkv, const tensor<cpu>& probs, int64_t heads, float scale,
                                      const tensor<cpu>& dout) {
  SSL_PROFILE_SCOPE("attention dS (bwd)");
  check_attention_input(qkv, heads, "attention_backward");
  const int64_t N = qkv.dim(0), T = qkv.dim(1), D = qkv.dim(2) / 3, d = D / heads;
  expect_shape(probs, shape{N, heads, T, T}, "attention_backward probs");
  expect_shape(dout, shape{N, T, D}, "attention_backward dout");
  tensor<cpu> dqkv(qkv.shape());
  const float* base = qkv.data();
  float* dbase = dqkv.data();
  parallel_for(0, N * heads, [&](int64_t nh) {
    const int64_t n = nh / heads, h = nh % heads;
    const int64_t off = n * T * 3 * D + h * d;
    const float *q = base + off, *k = q + D, *v = q + 2 * D;
    float *dq = dbase + off, *dk = dq + D, *dv = dq + 2 * D;
    const float* p = probs.data() + nh * T * T;
    const float* dO = dout.data() + n * T * D + h * d;
    float* ds = detail::attention_scratch(T * T);
    gemm(cpu{}, trans::yes, trans::no, T, d, T, 1.0f, p, T, dO, D, 0.0f, dv, 3 * D);  // dV = P^T dO
    gemm(cpu{}, trans::no, trans::yes, T, T, d, 1.0f, dO, D, v, 3 * D, 0.0f, ds, T);  // dP = dO V^T
    for (int64_t r = 0; r < T; ++r) {                                                 // dS = P o (dP - <P, dP>_row)
      const float* pr = p + r * T;
      float* sr = ds + r * T;
      float dot = 0.0f;
      for (int64_t c = 0; c < T; ++c) dot += pr[c] * sr[c];
      for (int64_t c = 0; c < T; ++c) sr[c] = pr[c] * (sr[c] - dot);
    }
    gemm(cpu{}, trans::no, trans::no, T, d, T, scale, ds, T, k, 3 * D, 0.0f, dq, 3 * D);   // dQ = scale dS K
    gemm(cpu{}, trans::yes, trans::no, T, d, T, scale, ds, T, q, 3 * D, 0.0f, dk, 3 * D);  // dK = scale dS^T Q
  });
  return dqkv;
}

}  // namespace ssl::ops
