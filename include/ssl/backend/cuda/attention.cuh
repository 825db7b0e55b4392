#pragma once
// Multi-head scaled dot-product self-attention on the device (contract of backend/cpu/attention.hpp):
//   qkv: (N, T, 3D) laid out (N, T, 3, H, d);  S = scale q k^T,  P = softmax_rows(S),  O = P v,
//   out (N, T, D) with heads concatenated; probs (N, H, T, T) saved for backward.
// q, k, v are first split into (N*H) contiguous (T, d) blocks; then each product is one
// cuBLAS strided-batched GEMM over all N*H heads. Backward:
//   dV = P^T dO,  dP = dO V^T,  dS = P o (dP - rowsum(P o dP)),  dQ = scale dS K,  dK = scale dS^T Q.
#include "../cpu/attention.hpp"  // check_attention_input and the CPU reference
#include "gemm.cuh"
#include "kernels/attention.cuh"
#include "kernels/softmax.cuh"
#include "layer_norm.cuh"  // detail::row_threads

namespace ssl::ops {

namespace detail {
// Workspace slots of attention (see conv2d.cuh: slots are free again when an op returns).
inline constexpr int att_q = 0, att_k = 1, att_v = 2, att_o = 3, att_p = 4, att_ds = 5, att_dq = 6, att_dk = 7,
                     att_dv = 8;
inline void check_attention_input(const tensor<cuda>& qkv, int64_t heads, const char* what) {
  check<value_error>(heads >= 1, what, ": expected heads >= 1, got ", heads);
  check<shape_error>(qkv.rank() == 3 && qkv.dim(2) % (3 * heads) == 0 && qkv.dim(2) > 0, what,
                     ": expected qkv of shape (N, T, 3 * D) with D divisible by ", heads, " heads, got ", qkv.shape());
}
inline unsigned grid(int64_t n) { return gpu::kernels::grid_for(n); }
}  // namespace detail

/// out (N, T, D) = attention(qkv); probs (N, H, T, T) receives P when given.
inline tensor<cuda> attention_forward(const tensor<cuda>& qkv, int64_t heads, float scale,
                                      tensor<cuda>* probs = nullptr) {
  detail::check_attention_input(qkv, heads, "attention_forward");
  const int64_t N = qkv.dim(0), T = qkv.dim(1), D = qkv.dim(2) / 3, d = D / heads, NH = N * heads;
  tensor<cuda> out(shape{N, T, D});
  if (probs && !(probs->shape() == shape{N, heads, T, T})) *probs = tensor<cuda>(shape{N, heads, T, T});
  if (N * T == 0) return out;
  gpu::context& ctx = gpu::context::get();
  const int64_t blk = T * d, n = N * T * D;
  float *q = ctx.workspace(detail::att_q, n), *k = ctx.workspace(detail::att_k, n), *v = ctx.workspace(detail::att_v, n);
  float* o = ctx.workspace(detail::att_o, n);
  float* s = ctx.workspace(detail::att_ds, NH * T * T);
  float* p = probs ? probs->data() : ctx.workspace(detail::att_p, NH * T * T);
  const gpu::kernels::attention_dims a{N, T, heads, d};
  gpu::kernels::split_qkv<<<detail::grid(n), gpu::kernels::block_size, 0, gpu::stream()>>>(qkv.data(), a, q, k, v);
  SSL_CUDA_CHECK_LAUNCH("split_qkv");
  gemm_strided_batched(cuda{}, trans::no, trans::yes, T, T, d, scale, q, d, blk, k, d, blk, 0.0f, s, T, T * T, NH);
  gpu::kernels::softmax_rows<<<unsigned(NH * T), detail::row_threads(T), 0, gpu::stream()>>>(s, p, T, false);
  SSL_CUDA_CHECK_LAUNCH("softmax_rows");
  gemm_strided_batched(cuda{}, trans::no, trans::no, T, d, T, 1.0f, p, T, T * T, v, d, blk, 0.0f, o, d, blk, NH);
  gpu::kernels::permute_heads<<<detail::grid(n), gpu::kernels::block_size, 0, gpu::stream()>>>(o, a, false,
                                                                                               out.data());
  SSL_CUDA_CHECK_LAUNCH("permute_heads");
  return out;
}

/// dqkv (N, T, 3D) from qkv, the saved P and dout (N, T, D).
inline tensor<cuda> attention_backward(const tensor<cuda>& qkv, const tensor<cuda>& probs, int64_t heads, float scale,
                                       const tensor<cuda>& dout) {
  detail::check_attention_input(qkv, heads, "attention_backward");
  const int64_t N = qkv.dim(0), T = qkv.dim(1), D = qkv.dim(2) / 3, d = D / heads, NH = N * heads;
  expect_shape(probs, shape{N, heads, T, T}, "attention_backward probs");
  expect_shape(dout, shape{N, T, D}, "attention_backward dout");
  tensor<cuda> dqkv(qkv.shape());
  if (N * T == 0) return dqkv;
  gpu::context& ctx = gpu::context::get();
  const int64_t blk = T * d, n = N * T * D;
  float *q = ctx.workspace(detail::att_q, n), *k = ctx.workspace(detail::att_k, n), *v = ctx.workspace(detail::att_v, n);
  float* dO = ctx.workspace(detail::att_o, n);
  float* dP = ctx.workspace(detail::att_p, NH * T * T);
  float* dS = ctx.workspace(detail::att_ds, NH * T * T);
  float *dq = ctx.workspace(detail::att_dq, n), *dk = ctx.workspace(detail::att_dk, n),
        *dv = ctx.workspace(detail::att_dv, n);
  const float* P = probs.data();
  const gpu::kernels::attention_dims a{N, T, heads, d};
  gpu::kernels::split_qkv<<<detail::grid(n), gpu::kernels::block_size, 0, gpu::stream()>>>(qkv.data(), a, q, k, v);
  SSL_CUDA_CHECK_LAUNCH("split_qkv");
  gpu::kernels::permute_heads<<<detail::grid(n), gpu::kernels::block_size, 0, gpu::stream()>>>(dout.data(), a, true,
                                                                                               dO);
  SSL_CUDA_CHECK_LAUNCH("permute_heads");
  gemm_strided_batched(cuda{}, trans::yes, trans::no, T, d, T, 1.0f, P, T, T * T, dO, d, blk, 0.0f, dv, d, blk, NH);
  gemm_strided_batched(cuda{}, trans::no, trans::yes, T, T, d, 1.0f, dO, d, blk, v, d, blk, 0.0f, dP, T, T * T, NH);
  gpu::kernels::softmax_rows_backward<<<unsigned(NH * T), detail::row_threads(T), 0, gpu::stream()>>>(P, dP, dS, T,
                                                                                                      false);
  SSL_CUDA_CHECK_LAUNCH("softmax_rows_backward");
  gemm_strided_batched(cuda{}, trans::no, trans::no, T, d, T, scale, dS, T, T * T, k, d, blk, 0.0f, dq, d, blk, NH);
  gemm_strided_batched(cuda{}, trans::yes, trans::no, T, d, T, scale, dS, T, T * T, q, d, blk, 0.0f, dk, d, blk, NH);
  gpu::kernels::merge_qkv<<<detail::grid(n), gpu::kernels::block_size, 0, gpu::stream()>>>(dq, dk, dv, a,
                                                                                           dqkv.data());
  SSL_CUDA_CHECK_LAUNCH("merge_qkv");
  return dqkv;
}

}  // namespace ssl::ops
