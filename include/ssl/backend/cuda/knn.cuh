#pragma once
// eval::knn_classify on device features: the CPU version's protocol (eval/knn.hpp) and results.
//   Tn = train / max(|train|, 1e-12), Qn likewise (normalize_rows), then per chunk of test rows:
//   S = Qn[chunk] Tn^T  (cuBLAS, (rows, N) cosines; FP32 unless gpu::set_tf32(true) was called)
//   knn_select: each row's k largest cosines (ties to the lower train index), (rows, k) to the host,
//   votes exp(cos / T) per class in double on the host, exactly as the CPU path.
// Chunks hold up to 2^26 cosines (256 MB); knn_options::chunk and train_tile are CPU blocking
// parameters and are not used here. One synchronisation per chunk (the (rows, k) lists).
#include <span>
#include <vector>

#include "../../eval/knn.hpp"
#include "buffer.cuh"
#include "gemm.cuh"
#include "kernels/knn.cuh"
#include "unit_rows.cuh"

namespace ssl::eval {

namespace detail {
// Host copy of the row norms (unit_rows::norm), each checked finite (numeric_error names the row).
inline void check_finite_norms(const tensor<cuda>& norm, const char* what) {
  const tensor<cpu> h = to_host(norm);
  for (int64_t i = 0; i < h.numel(); ++i) check_finite_norm(double(h[i]), i, what);
}
}  // namespace detail

/// Predicts a class for each row of test: (M, D) from train: (N, D) with train_labels (N), all
/// features on the device; the same predictions as the CPU overload up to float rounding of the
/// cosines. If test_labels is non-empty (size M) the result's accuracy is filled in.
inline knn_result knn_classify(const tensor<cuda>& train, std::span<const int> train_labels, const tensor<cuda>& test,
                               std::span<const int> test_labels = {}, const knn_options& o = {}) {
  expect_rank(train, 2, "knn train features");
  expect_rank(test, 2, "knn test features");
  const int64_t n = train.dim(0), m = test.dim(0), dim = train.dim(1);
  const int classes = detail::check_knn_inputs(n, dim, train_labels, m, test.dim(1), test_labels, o);
  knn_result res;
  res.predictions.assign(static_cast<size_t>(m), 0);
  if (m == 0) return res;
  const ops::detail::unit_rows tn = ops::detail::normalize_unit_rows(train, n);  // z: (N, D)
  const ops::detail::unit_rows qn = ops::detail::normalize_unit_rows(test, m);   // z: (M, D)
  detail::check_finite_norms(tn.norm, "train features");
  detail::check_finite_norms(qn.norm, "test features");

  const int k = o.k;
  const float inv_t = 1.0f / o.temperature;
  const int64_t chunk = std::clamp<int64_t>((int64_t(1) << 26) / std::max<int64_t>(n, 1), 1, m);
  tensor<cuda> S(shape{chunk, n});  // cosines of one chunk, overwritten by knn_select
  gpu::array<float> top_val(chunk * k);
  gpu::array<int32_t> top_idx(chunk * k);
  std::vector<float> host_val(static_cast<size_t>(chunk * k));
  std::vector<int32_t> host_idx(static_cast<size_t>(chunk * k));
  std::vector<double> votes(static_cast<size_t>(classes));
  for (int64_t r0 = 0; r0 < m; r0 += chunk) {
    const int64_t rows = std::min(chunk, m - r0);
    ops::gemm(cuda{}, ops::trans::no, ops::trans::yes, rows, n, dim, 1.0f, qn.z.data() + r0 * dim, dim, tn.z.data(),
              dim, 0.0f, S.data(), n);
    gpu::kernels::knn_select<<<unsigned(rows), gpu::kernels::knn_select_threads, 0, gpu::stream()>>>(
        S.data(), n, k, top_val.data(), top_idx.data());
    SSL_CUDA_CHECK_LAUNCH("knn_select");
    const size_t pairs = size_t(rows * k);
    SSL_CUDA_CHECK(cudaMemcpyAsync(host_val.data(), top_val.data(), pairs * sizeof(float), cudaMemcpyDeviceToHost,
                                   gpu::stream()));
    SSL_CUDA_CHECK(cudaMemcpyAsync(host_idx.data(), top_idx.data(), pairs * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                   gpu::stream()));
    gpu::synchronize();
    detail::knn_vote(host_val.data(), host_idx.data(), k, rows, train_labels, inv_t, votes,
                     res.predictions.data() + r0);
  }
  if (!test_labels.empty()) res.accuracy = detail::accuracy(res.predictions, test_labels);
  return res;
}

}  // namespace ssl::eval
