#pragma once
// C = alpha * op(A) * op(B) + beta * C on the device, row-major, float32, via cuBLAS SGEMM.
//   op(A): (M, K), op(B): (K, N), C: (M, N); lda/ldb/ldc are row strides (as the CPU gemm).
// cuBLAS is column-major: a row-major (M, N) matrix is its column-major transpose, so
//   C^T (N, M) = op(B)^T op(A)^T   is one column-major SGEMM with the operands swapped.
// FP32 by default; gpu::set_tf32(true) switches the handle to TF32 tensor cores.
#include <cstdint>

#include "../cpu/gemm.hpp"  // ssl::ops::trans and the CPU reference
#include "buffer.cuh"

namespace ssl::ops {

inline void gemm(cuda, trans ta, trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const cublasOperation_t opa = ta == trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opb = tb == trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
  // K == 0: cuBLAS scales C by beta, which is the mathematical result.
  SSL_CUBLAS_CHECK(cublasSgemm(gpu::context::get().cublas(), opb, opa, int(N), int(M), int(K), &alpha, B, int(ldb), A,
                               int(lda), &beta, C, int(ldc)));
}

/// C(M,N) = alpha * op(A) op(B) + beta * C on whole 2-D device tensors.
inline void matmul(const tensor<cuda>& A, trans ta, const tensor<cuda>& B, trans tb, tensor<cuda>& C,
                   float alpha = 1.0f, float beta = 0.0f) {
  expect_rank(A, 2, "matmul A");
  expect_rank(B, 2, "matmul B");
  const int64_t M = ta == trans::yes ? A.dim(1) : A.dim(0);
  const int64_t K = ta == trans::yes ? A.dim(0) : A.dim(1);
  const int64_t Kb = tb == trans::yes ? B.dim(1) : B.dim(0);
  const int64_t N = tb == trans::yes ? B.dim(0) : B.dim(1);
  check<shape_error>(K == Kb, "matmul: inner dimensions differ: op(A) is ", M, "x", K, ", op(B) is ", Kb, "x", N,
                     " (A ", A.shape(), ", B ", B.shape(), ")");
  if (beta == 0.0f && !(C.rank() == 2 && C.dim(0) == M && C.dim(1) == N)) C = tensor<cuda>(shape{M, N});
  expect_shape(C, shape{M, N}, "matmul C");
  gemm(cuda{}, ta, tb, M, N, K, alpha, A.data(), A.dim(1), B.data(), B.dim(1), beta, C.data(), N);
}

}  // namespace ssl::ops

namespace ssl::ops {

/// batch independent GEMMs C_b = alpha op(A_b) op(B_b) + beta C_b, row-major, where
/// X_b = X + b * strideX (one cuBLAS strided-batched call: attention's per-head products).
inline void gemm_strided_batched(cuda, trans ta, trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                 int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                                 float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  const cublasOperation_t opa = ta == trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opb = tb == trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
  SSL_CUBLAS_CHECK(cublasSgemmStridedBatched(gpu::context::get().cublas(), opb, opa, int(N), int(M), int(K), &alpha, B,
                                             int(ldb), stride_b, A, int(lda), stride_a, &beta, C, int(ldc), stride_c,
                                             int(batch)));
}

}  // namespace ssl::ops
