#pragma once
// C = alpha * op(A) * op(B) + beta * C, row-major, float32.
//   op(A): (M, K), op(B): (K, N), C: (M, N); lda/ldb/ldc are row strides.
// The one GEMM path of the CPU backend: a serial kernel per thread block (always present): the
// library's packed register-tile GEMM (packed_gemm.hpp) for all but tiny products, Eigen's for those;
// and with SSL_USE_OPENBLAS (the CMake option) OpenBLAS's threaded cblas_sgemm for the calls made
// outside the library's parallel regions. Calls from inside a parallel region (attention's per-head
// GEMMs) always take the serial kernel: OpenBLAS's own thread pool started from there would
// oversubscribe the cores (W1 ran 4x slower that way).
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "../../core/profile.hpp"
#include "../../tensor/tensor.hpp"
#include "packed_gemm.hpp"

#if defined(SSL_USE_OPENBLAS)
#include <cblas.h>
#endif

namespace ssl::ops {

enum class trans : bool { no = false, yes = true };

namespace detail {
/// Products below this size (in M N K) go to Eigen, whose small-matrix paths skip packing
/// (attention's per-head products of a few dozen tokens, small losses).
inline constexpr double packed_gemm_min_volume = 32.0 * 32.0 * 32.0;

/// Serial GEMM on one block (the caller splits the work between threads).
inline void gemm_block(trans ta, trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                       const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K > 0 && alpha != 0.0f && double(M) * double(N) * double(K) >= packed_gemm_min_volume && M >= 4 && N >= 8) {
    packed_gemm(ta == trans::yes, tb == trans::yes, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<Mat, 0, Stride> c(C, M, N, Stride(ldc));
  if (beta == 0.0f)
    c.setZero();
  else if (beta != 1.0f)
    c *= beta;
  if (K == 0 || alpha == 0.0f) return;
  // A stored row-major (M,K) if not transposed, else (K,M); same for B.
  Eigen::Map<const Mat, 0, Stride> a(A, ta == trans::yes ? K : M, ta == trans::yes ? M : K, Stride(lda));
  Eigen::Map<const Mat, 0, Stride> b(B, tb == trans::yes ? N : K, tb == trans::yes ? K : N, Stride(ldb));
  if (ta == trans::no && tb == trans::no)
    c.noalias() += alpha * a * b;
  else if (ta == trans::no && tb == trans::yes)
    c.noalias() += alpha * a * b.transpose();
  else if (ta == trans::yes && tb == trans::no)
    c.noalias() += alpha * a.transpose() * b;
  else
    c.noalias() += alpha * a.transpose() * b.transpose();
}

/// True inside an OpenMP parallel region (the library's parallel_for).
inline bool in_parallel_region() {
#if defined(_OPENMP)
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}
}  // namespace detail

/// Threading: called outside a parallel region with enough work, the product is cut into one
/// block of rows (or of columns, whichever dimension is larger) per thread, and each thread runs
/// a single-threaded GEMM on its block. This static split beats Eigen's own shared-panel
/// threading on small core counts (no spinning on a descheduled partner) and keeps the result
/// independent of scheduling. Inside a parallel region (attention's per-head GEMMs) it runs serially.
/// With SSL_USE_OPENBLAS, calls outside a parallel region go to cblas_sgemm (its own threads).
inline void gemm(cpu, trans ta, trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  SSL_PROFILE_SCOPE("gemm");
  if (M == 0 || N == 0) return;
#if defined(SSL_USE_OPENBLAS)
  if (!detail::in_parallel_region()) {
    cblas_sgemm(CblasRowMajor, ta == trans::yes ? CblasTrans : CblasNoTrans,
                tb == trans::yes ? CblasTrans : CblasNoTrans, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb),
                beta, C, int(ldc));
    return;
  }
#endif
#if defined(_OPENMP)
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  if (threads > 1 && flops >= 4e6) {
    const bool split_rows = M >= N;
    const int64_t extent = split_rows ? M : N;
    const int64_t parts = std::min<int64_t>(threads, std::max<int64_t>(1, extent / 16));
    if (parts > 1) {
#pragma omp parallel for num_threads(int(parts)) schedule(static)
      for (int64_t p = 0; p < parts; ++p) {
        // block boundaries rounded to multiples of 16 (SIMD-friendly panels)
        int64_t b0 = (extent * p / parts) / 16 * 16, b1 = p + 1 == parts ? extent : (extent * (p + 1) / parts) / 16 * 16;
        if (b1 <= b0) continue;
        if (split_rows) {
          const float* Ab = ta == trans::yes ? A + b0 : A + b0 * lda;
          detail::gemm_block(ta, tb, b1 - b0, N, K, alpha, Ab, lda, B, ldb, beta, C + b0 * ldc, ldc);
        } else {
          const float* Bb = tb == trans::yes ? B + b0 * ldb : B + b0;
          detail::gemm_block(ta, tb, M, b1 - b0, K, alpha, A, lda, Bb, ldb, beta, C + b0, ldc);
        }
      }
      return;
    }
  }
#endif
  detail::gemm_block(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/// C(M,N) = alpha * op(A) op(B) + beta * C on whole 2-D tensors (dense strides).
inline void matmul(const tensor<cpu>& A, trans ta, const tensor<cpu>& B, trans tb, tensor<cpu>& C, float alpha = 1.0f,
                   float beta = 0.0f) {
  expect_rank(A, 2, "matmul A");
  expect_rank(B, 2, "matmul B");
  const int64_t M = ta == trans::yes ? A.dim(1) : A.dim(0);
  const int64_t K = ta == trans::yes ? A.dim(0) : A.dim(1);
  const int64_t Kb = tb == trans::yes ? B.dim(1) : B.dim(0);
  const int64_t N = tb == trans::yes ? B.dim(0) : B.dim(1);
  check<shape_error>(K == Kb, "matmul: inner dimensions differ: op(A) is ", M, "x", K, ", op(B) is ", Kb, "x", N,
                     " (A ", A.shape(), ", B ", B.shape(), ")");
  if (beta == 0.0f && !(C.rank() == 2 && C.dim(0) == M && C.dim(1) == N)) C = tensor<cpu>(shape{M, N});
  expect_shape(C, shape{M, N}, "matmul C");
  gemm(cpu{}, ta, tb, M, N, K, alpha, A.data(), A.dim(1), B.data(), B.dim(1), beta, C.data(), N);
}

}  // namespace ssl::ops
