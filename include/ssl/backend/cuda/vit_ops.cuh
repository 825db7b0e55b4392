#pragma once
// Token-sequence ops of the op-level ViT / MAE / DINO steps on the device: the overloads of
// backend/cpu/vit_ops.hpp (same contracts, same checks). Index lists (MAE's restore order) come
// from the host, are checked there and uploaded once per call (masks are drawn on the host).
// Also insert_tokens / remove_tokens (ViT registers) and scale_channels(_backward) (LayerScale).
// Device only: scale_rows (drop_path's per-sample scale; nn/drop_path.hpp keeps its CPU loop).
#include <vector>

#include "../cpu/vit_ops.hpp"  // the CPU reference: both overloads visible together
#include "buffer.cuh"
#include "elementwise.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/vit_ops.cuh"
#include "linear.cuh"  // column_sums

namespace ssl::ops {

namespace vit_detail {
inline unsigned blocks(int64_t n) { return gpu::kernels::grid_for(n); }
inline gpu::array<int32_t> upload(const std::vector<int32_t>& idx) {
  gpu::array<int32_t> d(int64_t(idx.size()));
  if (!idx.empty())
    SSL_CUDA_CHECK(cudaMemcpyAsync(d.data(), idx.data(), d.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
  return d;
}
}  // namespace vit_detail

inline tensor<cuda> residual_add(const tensor<cuda>& x, const tensor<cuda>& y) { return add(x, y); }

inline tensor<cuda> add_rows(const tensor<cuda>& x, const tensor<cuda>& rows) {
  vit_detail::check_add_rows(x, rows);
  const int64_t N = x.dim(0), TD = x.dim(1) * x.dim(2);
  tensor<cuda> y(x.shape());
  if (y.numel()) {
    gpu::kernels::add_rows<<<vit_detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), rows.data(), N, TD, y.data());
    SSL_CUDA_CHECK_LAUNCH("add_rows");
  }
  return y;
}

/// acc += sum over n of dy[n] (deterministic two-stage column sums of dy viewed as (N, T D)).
inline void sum_batch(const tensor<cuda>& dy, tensor<cuda>& acc) {
  vit_detail::check_sum_batch(dy, acc);
  const int64_t N = dy.dim(0), TD = dy.dim(1) * dy.dim(2);
  column_sums(dy.data(), acc.data(), N, TD, true);
}

inline void add_range(tensor<cuda>& dst, int64_t d0, const tensor<cuda>& src, int64_t s0, int64_t n,
                      float alpha = 1.0f) {
  vit_detail::check_add_range(dst, d0, src, s0, n);
  if (n == 0) return;
  gpu::kernels::axpby<<<vit_detail::blocks(n), gpu::kernels::block_size, 0, gpu::stream()>>>(
      alpha, src.data() + s0, 1.0f, dst.data() + d0, n);
  SSL_CUDA_CHECK_LAUNCH("add_range");
}

inline tensor<cuda> slice_tokens(const tensor<cuda>& x, int64_t begin, int64_t count) {
  vit_detail::check_token_range(x, begin, count, "slice_tokens");
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  tensor<cuda> y(shape{N, count, D});
  if (y.numel()) {
    gpu::kernels::slice_tokens<<<vit_detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), N, T, begin, count, D, y.data());
    SSL_CUDA_CHECK_LAUNCH("slice_tokens");
  }
  return y;
}

inline tensor<cuda> unslice_tokens(const tensor<cuda>& dy, int64_t T, int64_t begin) {
  vit_detail::check_unslice(dy, T, begin);
  const int64_t N = dy.dim(0), K = dy.dim(1), D = dy.dim(2);
  tensor<cuda> dx(shape{N, T, D});
  if (dx.numel()) {
    gpu::kernels::unslice_tokens<<<vit_detail::blocks(dx.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        dy.data(), N, T, begin, K, D, dx.data());
    SSL_CUDA_CHECK_LAUNCH("unslice_tokens");
  }
  return dx;
}

inline tensor<cuda> unshuffle_tokens(const tensor<cuda>& e, const std::vector<int32_t>& restore, int64_t K,
                                     const tensor<cuda>& mask_token) {
  const int64_t L = vit_detail::check_unshuffle(e, restore, K, mask_token);
  const int64_t N = e.dim(0), D = e.dim(2);
  const gpu::array<int32_t> idx = vit_detail::upload(restore);
  tensor<cuda> full(shape{N, 1 + L, D});
  if (full.numel()) {
    gpu::kernels::unshuffle_tokens<<<vit_detail::blocks(full.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        e.data(), idx.data(), mask_token.data(), N, L, K, D, full.data());
    SSL_CUDA_CHECK_LAUNCH("unshuffle_tokens");
  }
  return full;
}

inline tensor<cuda> unshuffle_tokens_backward(const tensor<cuda>& g, const std::vector<int32_t>& restore, int64_t K,
                                              tensor<cuda>& dmask) {
  vit_detail::check_unshuffle_backward(g, restore, K, dmask);
  const int64_t N = g.dim(0), L = g.dim(1) - 1, D = g.dim(2);
  // No patches (L = 0): only the [CLS] rows, as the CPU (the kernel below writes them from l = 0).
  if (L == 0) return unslice_tokens(g, 1 + K, 0);
  const gpu::array<int32_t> idx = vit_detail::upload(restore);
  tensor<cuda> de(shape{N, 1 + K, D});
  if (N * L * D == 0) return de;
  // Workspace slot 0 is free between ops (stream order); column_sums uses the last slot.
  float* hidden = gpu::context::get().workspace(0, N * L * D);
  gpu::kernels::unshuffle_tokens_backward<<<vit_detail::blocks(N * L * D), gpu::kernels::block_size, 0,
                                            gpu::stream()>>>(g.data(), idx.data(), N, L, K, D, de.data(), hidden);
  SSL_CUDA_CHECK_LAUNCH("unshuffle_tokens_backward");
  column_sums(hidden, dmask.data(), N * L, D, true);
  return de;
}

inline tensor<cuda> insert_tokens(const tensor<cuda>& x, const tensor<cuda>& tokens, int64_t at) {
  const int64_t R = vit_detail::check_insert(x, tokens, at);
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  tensor<cuda> y(shape{N, T + R, D});
  if (y.numel()) {
    gpu::kernels::insert_tokens<<<vit_detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), tokens.data(), N, T, at, R, D, y.data());
    SSL_CUDA_CHECK_LAUNCH("insert_tokens");
  }
  return y;
}

inline tensor<cuda> remove_tokens(const tensor<cuda>& x, int64_t at, int64_t count) {
  vit_detail::check_token_range(x, at, count, "remove_tokens");
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  tensor<cuda> y(shape{N, T - count, D});
  if (y.numel()) {
    gpu::kernels::remove_tokens<<<vit_detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), N, T, at, count, D, y.data());
    SSL_CUDA_CHECK_LAUNCH("remove_tokens");
  }
  return y;
}

inline tensor<cuda> scale_channels(const tensor<cuda>& x, const tensor<cuda>& gamma) {
  const int64_t D = vit_detail::check_channels(x, gamma, "scale_channels");
  tensor<cuda> y(x.shape());
  if (y.numel()) {
    gpu::kernels::scale_channels<<<vit_detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), gamma.data(), D, y.numel(), y.data());
    SSL_CUDA_CHECK_LAUNCH("scale_channels");
  }
  return y;
}

/// dx = dy gamma; dgamma += sum over rows of x dy (x dy in workspace slot 0, deterministic column_sums).
inline tensor<cuda> scale_channels_backward(const tensor<cuda>& x, const tensor<cuda>& dy, const tensor<cuda>& gamma,
                                            tensor<cuda>& dgamma) {
  const int64_t D = vit_detail::check_channels(x, gamma, "scale_channels_backward");
  expect_shape(dy, x.shape(), "scale_channels_backward dy");
  expect_shape(dgamma, gamma.shape(), "scale_channels_backward dgamma");
  tensor<cuda> dx(x.shape());
  if (dx.numel() == 0) return dx;
  float* prod = gpu::context::get().workspace(0, dx.numel());
  gpu::kernels::scale_channels_backward<<<vit_detail::blocks(dx.numel()), gpu::kernels::block_size, 0,
                                          gpu::stream()>>>(x.data(), dy.data(), gamma.data(), D, dx.numel(),
                                                           dx.data(), prod);
  SSL_CUDA_CHECK_LAUNCH("scale_channels_backward");
  column_sums(prod, dgamma.data(), dx.numel() / D, D, true);
  return dx;
}

/// x[n] *= scale[n] for every sample n of x (N, ...), in place; scale: N host values (drop_path's
/// per-sample keep scale, drawn on the host), uploaded.
inline void scale_rows(tensor<cuda>& x, const std::vector<float>& scale) {
  check<shape_error>(x.rank() >= 1 && x.dim(0) == int64_t(scale.size()), "scale_rows: expected ", scale.size(),
                     " samples, got ", x.shape());
  if (x.numel() == 0) return;
  gpu::array<float> s(int64_t(scale.size()));
  SSL_CUDA_CHECK(cudaMemcpyAsync(s.data(), scale.data(), s.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
  gpu::kernels::scale_rows<<<vit_detail::blocks(x.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      x.data(), s.data(), x.numel() / x.dim(0), x.numel());
  SSL_CUDA_CHECK_LAUNCH("scale_rows");
}

}  // namespace ssl::ops
