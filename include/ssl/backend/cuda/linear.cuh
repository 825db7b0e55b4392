#pragma once
// Fully connected layer on the device: y = x W^T + b (same contract as backend/cpu/linear.hpp).
//   x: (R, in) with any leading dims flattened into rows, W: (out, in), b: (out) or none.
// Both products are cuBLAS GEMMs; the bias is written first and the GEMM adds on top (beta = 1).
#include "../cpu/linear.hpp"  // the CPU reference: both overloads visible together
#include <algorithm>

#include "gemm.cuh"
#include "kernels/linear.cuh"

namespace ssl::ops {

/// Workspace slot of the column-sum partials (the last one: free while other ops run).
inline constexpr int column_sums_slot = gpu::context::workspace_slots - 1;

inline void check_linear_input(const tensor<cuda>& x, const tensor<cuda>& weight, const char* what) {
  const int64_t in = weight.dim(1);
  check<shape_error>(x.rank() >= 2 && x.dim(-1) == in, what, ": expected input of shape (N, ", in, ") or (N, T, ", in,
                     ") for weight ", weight.shape(), ", got ", x.shape());
}

/// acc (+)= column sums of g (rows, cols), deterministic (two stages through a workspace).
inline void column_sums(const float* g, float* acc, int64_t rows, int64_t cols, bool accumulate) {
  if (cols == 0) return;
  const int64_t chunk_rows = gpu::kernels::column_chunk_rows(rows);
  const int64_t chunks = std::max<int64_t>(1, (rows + chunk_rows - 1) / chunk_rows);
  float* partial = gpu::context::get().workspace(column_sums_slot, chunks * cols);
  const unsigned col_blocks = unsigned((cols + 127) / 128);
  if (rows > 0) {
    gpu::kernels::column_sums_partial<<<dim3(col_blocks, unsigned(chunks)), 128, 0, gpu::stream()>>>(
        g, rows, cols, chunk_rows, partial);
    SSL_CUDA_CHECK_LAUNCH("column_sums_partial");
  } else {
    SSL_CUDA_CHECK(cudaMemsetAsync(partial, 0, size_t(cols) * sizeof(float), gpu::stream()));
  }
  gpu::kernels::column_sums_finish<<<col_blocks, 128, 0, gpu::stream()>>>(partial, chunks, cols, acc, accumulate);
  SSL_CUDA_CHECK_LAUNCH("column_sums_finish");
}

inline tensor<cuda> linear_forward(const tensor<cuda>& x, const tensor<cuda>& weight, const tensor<cuda>* bias) {
  check_linear_input(x, weight, "linear_forward");
  const int64_t out = weight.dim(0), in = weight.dim(1);
  const int64_t rows = x.numel() / in;
  if (bias) expect_shape(*bias, shape{out}, "linear_forward bias");
  shape ys = x.shape();
  ys[-1] = out;
  tensor<cuda> y(ys);
  float beta = 0.0f;
  if (bias && rows * out > 0) {
    gpu::kernels::broadcast_rows<<<gpu::kernels::grid_for(rows * out), gpu::kernels::block_size, 0, gpu::stream()>>>(
        bias->data(), y.data(), rows, out);
    SSL_CUDA_CHECK_LAUNCH("broadcast_rows");
    beta = 1.0f;
  }
  gemm(cuda{}, trans::no, trans::yes, rows, out, in, 1.0f, x.data(), in, weight.data(), in, beta, y.data(), out);
  return y;
}

/// Returns dx = dy W; accumulates dW += dy^T x and db += column sums of dy (db may be null).
inline tensor<cuda> linear_backward(const tensor<cuda>& x, const tensor<cuda>& weight, const tensor<cuda>& dy,
                                    tensor<cuda>& dweight, tensor<cuda>* dbias) {
  check_linear_input(x, weight, "linear_backward");
  const int64_t out = weight.dim(0), in = weight.dim(1);
  const int64_t rows = x.numel() / in;
  shape ys = x.shape();
  ys[-1] = out;
  expect_shape(dy, ys, "linear_backward dy");
  expect_shape(dweight, weight.shape(), "linear_backward dW");
  if (dbias) expect_shape(*dbias, shape{out}, "linear_backward db");
  tensor<cuda> dx(x.shape());
  gemm(cuda{}, trans::no, trans::no, rows, in, out, 1.0f, dy.data(), out, weight.data(), in, 0.0f, dx.data(), in);
  gemm(cuda{}, trans::yes, trans::no, out, in, rows, 1.0f, dy.data(), out, x.data(), in, 1.0f, dweight.data(), in);
  if (dbias) column_sums(dy.data(), dbias->data(), rows, out, true);
  return dx;
}

}  // namespace ssl::ops
