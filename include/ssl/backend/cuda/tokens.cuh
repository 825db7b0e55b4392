#pragma once
// ViT token plumbing, the residual join and the elementwise product on the device
// (contracts of backend/cpu/patch_embed.hpp, residual.hpp and dropout.hpp's multiply):
//   patchify / unpatchify, prepend_token, gather_tokens / scatter_tokens (host index lists,
//   validated on the host and uploaded: masks are drawn on the host), add_relu_inplace and
//   its backward, multiply (dropout masks), mask_tokens and its backward (hidden flags uploaded).
#include <vector>

#include "../cpu/dropout.hpp"
#include "../cpu/patch_embed.hpp"
#include "../cpu/residual.hpp"
#include "buffer.cuh"
#include "kernels/tokens.cuh"
#include "linear.cuh"  // column_sums

namespace ssl::ops {

namespace detail {
inline unsigned blocks(int64_t n) { return gpu::kernels::grid_for(n); }
inline gpu::array<int32_t> upload_indices(const std::vector<int32_t>& idx, int64_t T, const char* what) {
  for (int32_t t : idx) check<value_error>(t >= 0 && t < T, what, ": index ", t, " outside [0, ", T, ")");
  gpu::array<int32_t> d(int64_t(idx.size()));
  if (!idx.empty())
    SSL_CUDA_CHECK(cudaMemcpyAsync(d.data(), idx.data(), d.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
  return d;
}
}  // namespace detail

inline tensor<cuda> patchify(const tensor<cuda>& x, int64_t p) {
  check<value_error>(p >= 1, "patchify: expected patch size >= 1, got ", p);
  check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 && x.dim(2) > 0 && x.dim(3) > 0,
                     "patchify: expected images (N, C, H, W) with H and W multiples of the patch size ", p, ", got ",
                     x.shape());
  const int64_t N = x.dim(0), C = x.dim(1), gh = x.dim(2) / p, gw = x.dim(3) / p;
  tensor<cuda> out(shape{N, gh * gw, C * p * p});
  if (out.numel()) {
    gpu::kernels::patchify<<<detail::blocks(out.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), N, C, p, gh, gw, true, out.data());
    SSL_CUDA_CHECK_LAUNCH("patchify");
  }
  return out;
}

inline tensor<cuda> unpatchify(const tensor<cuda>& patches, int64_t channels, int64_t p, int64_t gh, int64_t gw) {
  check<shape_error>(patches.rank() == 3 && patches.dim(1) == gh * gw && patches.dim(2) == channels * p * p,
                     "unpatchify: expected patches (N, ", gh * gw, ", ", channels * p * p, ") for a ", gh, "x", gw,
                     " grid of ", channels, "x", p, "x", p, " patches, got ", patches.shape());
  const int64_t N = patches.dim(0);
  tensor<cuda> x(shape{N, channels, gh * p, gw * p});
  if (x.numel()) {
    gpu::kernels::patchify<<<detail::blocks(x.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        patches.data(), N, channels, p, gh, gw, false, x.data());
    SSL_CUDA_CHECK_LAUNCH("unpatchify");
  }
  return x;
}

inline tensor<cuda> prepend_token(const tensor<cuda>& x, const tensor<cuda>& token) {
  check<shape_error>(x.rank() == 3 && token.numel() == x.dim(2), "prepend_token: expected tokens (N, L, ",
                     token.numel(), ") for a token of ", token.numel(), " values, got ", x.shape());
  const int64_t N = x.dim(0), L = x.dim(1), D = x.dim(2);
  tensor<cuda> y(shape{N, L + 1, D});
  if (y.numel()) {
    gpu::kernels::prepend_token<<<detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), token.data(), N, L, D, y.data());
    SSL_CUDA_CHECK_LAUNCH("prepend_token");
  }
  return y;
}

inline tensor<cuda> gather_tokens(const tensor<cuda>& x, const std::vector<int32_t>& idx, int64_t K) {
  check<shape_error>(x.rank() == 3, "gather_tokens: expected tokens (N, T, D), got ", x.shape());
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2);
  check<shape_error>(int64_t(idx.size()) == N * K, "gather_tokens: expected ", N * K, " indices (", N, " x ", K,
                     "), got ", idx.size());
  const gpu::array<int32_t> d = detail::upload_indices(idx, T, "gather_tokens");
  tensor<cuda> y(shape{N, K, D});
  if (y.numel()) {
    gpu::kernels::gather_tokens<<<detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        x.data(), d.data(), N, T, K, D, y.data());
    SSL_CUDA_CHECK_LAUNCH("gather_tokens");
  }
  return y;
}

inline tensor<cuda> scatter_tokens(const tensor<cuda>& dy, const std::vector<int32_t>& idx, int64_t T) {
  check<shape_error>(dy.rank() == 3, "scatter_tokens: expected tokens (N, K, D), got ", dy.shape());
  const int64_t N = dy.dim(0), K = dy.dim(1), D = dy.dim(2);
  check<shape_error>(int64_t(idx.size()) == N * K, "scatter_tokens: expected ", N * K, " indices, got ", idx.size());
  const gpu::array<int32_t> d = detail::upload_indices(idx, T, "scatter_tokens");
  tensor<cuda> dx(shape{N, T, D});
  if (dx.numel()) SSL_CUDA_CHECK(cudaMemsetAsync(dx.data(), 0, size_t(dx.numel()) * sizeof(float), gpu::stream()));
  if (dy.numel()) {
    gpu::kernels::scatter_tokens<<<detail::blocks(dy.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        dy.data(), d.data(), N, T, K, D, dx.data());
    SSL_CUDA_CHECK_LAUNCH("scatter_tokens");
  }
  return dx;
}

inline tensor<cuda> mask_tokens(const tensor<cuda>& x, const std::vector<uint8_t>& hidden, const tensor<cuda>& token) {
  patch_detail::check_hidden(x, hidden, token.numel(), "mask_tokens");
  const int64_t R = x.dim(0) * x.dim(1), D = x.dim(2);
  tensor<cuda> y(x.shape());
  if (y.numel() == 0) return y;
  gpu::array<uint8_t> h(R);
  SSL_CUDA_CHECK(cudaMemcpyAsync(h.data(), hidden.data(), h.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
  gpu::kernels::mask_tokens<<<detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      x.data(), h.data(), token.data(), R, D, y.data());
  SSL_CUDA_CHECK_LAUNCH("mask_tokens");
  return y;
}

/// dtoken += sum of the hidden rows of dy (gathered in row order, then one column sum:
/// deterministic); returns dy with those rows zeroed.
inline tensor<cuda> mask_tokens_backward(const tensor<cuda>& dy, const std::vector<uint8_t>& hidden,
                                         tensor<cuda>& dtoken) {
  patch_detail::check_hidden(dy, hidden, dtoken.numel(), "mask_tokens_backward");
  const int64_t R = dy.dim(0) * dy.dim(1), D = dy.dim(2);
  std::vector<int32_t> rows;
  for (int64_t r = 0; r < R; ++r)
    if (hidden[size_t(r)]) rows.push_back(int32_t(r));
  tensor<cuda> dx = dy;
  if (rows.empty() || D == 0) return dx;
  tensor<cuda> flat = dy;
  flat.reshape(shape{1, R, D});
  const tensor<cuda> picked = gather_tokens(flat, rows, int64_t(rows.size()));  // (1, M, D)
  column_sums(picked.data(), dtoken.data(), int64_t(rows.size()), D, true);
  gpu::array<uint8_t> h(R);
  SSL_CUDA_CHECK(cudaMemcpyAsync(h.data(), hidden.data(), h.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
  gpu::kernels::zero_hidden_rows<<<detail::blocks(dx.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      h.data(), R, D, dx.data());
  SSL_CUDA_CHECK_LAUNCH("zero_hidden_rows");
  return dx;
}

/// y = relu(y + shortcut), in place.
inline void add_relu_inplace(tensor<cuda>& y, const tensor<cuda>& shortcut) {
  expect_shape(shortcut, y.shape(), "residual add shortcut");
  if (y.numel() == 0) return;
  gpu::kernels::add_relu<<<detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      y.data(), shortcut.data(), y.numel());
  SSL_CUDA_CHECK_LAUNCH("add_relu");
}
/// dy *= (y > 0), in place.
inline void add_relu_backward_inplace(const tensor<cuda>& y, tensor<cuda>& dy) {
  expect_shape(dy, y.shape(), "residual add backward dy");
  if (y.numel() == 0) return;
  gpu::kernels::relu_mask<<<detail::blocks(y.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      y.data(), dy.data(), y.numel());
  SSL_CUDA_CHECK_LAUNCH("relu_mask");
}
/// a * b elementwise (same shapes).
inline tensor<cuda> multiply(const tensor<cuda>& a, const tensor<cuda>& b) {
  expect_shape(b, a.shape(), "multiply b");
  tensor<cuda> z(a.shape());
  if (z.numel()) {
    gpu::kernels::multiply<<<detail::blocks(z.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
        a.data(), b.data(), z.data(), z.numel());
    SSL_CUDA_CHECK_LAUNCH("multiply");
  }
  return z;
}

}  // namespace ssl::ops
