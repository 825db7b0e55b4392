#pragma once
// DenseCL on the device (contract and CPU reference: losses/densecl.hpp, methods/densecl.hpp).
//   device_densecl_matched_keys(qb, kb, k, match): qn, kn = unit rows of the (N S, D) backbone
//     tokens; cosines C[n] = qn[n] kn[n]^T (N, S, S) by one strided-batched cuBLAS GEMM; the row
//     argmax by knn_select with k = 1 (largest cosine, ties to the lowest location, as the CPU);
//     one gather of the matched dense key rows (N S, C). The indices reach the host only when asked.
//   device_densecl_mean_tokens(x): (N, S, C) -> (N, C), per image 1^T x[n] / S (strided-batched GEMM
//     against a ones vector); device_densecl_add_mean_backward(dx, dy): dx[n, s] += dy[n] / S.
// No host synchronisation in any of them (but the optional index download).
#include <vector>

#include "../../losses/densecl.hpp"
#include "buffer.cuh"
#include "gemm.cuh"
#include "kernels/densecl.cuh"
#include "kernels/knn.cuh"  // knn_select
#include "unit_rows.cuh"

namespace ssl {

/// densecl_matched_keys on device tensors (found by losses/densecl.hpp for tensor<cuda>).
inline tensor<cuda> device_densecl_matched_keys(const tensor<cuda>& qb, const tensor<cuda>& kb, const tensor<cuda>& k,
                                                std::vector<int64_t>* match) {
  const int64_t N = qb.dim(0), S = qb.dim(1), D = qb.dim(2), C = k.dim(2);
  const ops::detail::unit_rows qn = ops::detail::normalize_unit_rows(qb, N * S);
  const ops::detail::unit_rows kn = ops::detail::normalize_unit_rows(kb, N * S);
  tensor<cuda> sim(shape{N, S, S});  // sim[n, s, t] = qn[n, s] . kn[n, t]
  ops::gemm_strided_batched(cuda{}, ops::trans::no, ops::trans::yes, S, S, D, 1.0f, qn.z.data(), D, S * D,
                            kn.z.data(), D, S * D, 0.0f, sim.data(), S, S * S, N);
  gpu::array<float> best(N * S);
  gpu::array<int32_t> idx(N * S);
  gpu::kernels::knn_select<<<unsigned(N * S), gpu::kernels::knn_select_threads, 0, gpu::stream()>>>(
      sim.data(), S, 1, best.data(), idx.data());
  SSL_CUDA_CHECK_LAUNCH("knn_select");
  tensor<cuda> out(shape{N * S, C});
  gpu::kernels::densecl_gather_matched<<<gpu::kernels::grid_for(N * S * C), gpu::kernels::block_size, 0,
                                         gpu::stream()>>>(k.data(), idx.data(), N * S, S, C, out.data());
  SSL_CUDA_CHECK_LAUNCH("densecl_gather_matched");
  if (match) {
    std::vector<int32_t> host(static_cast<size_t>(N * S));
    SSL_CUDA_CHECK(cudaMemcpyAsync(host.data(), idx.data(), size_t(N * S) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                   gpu::stream()));
    gpu::synchronize();
    match->assign(host.begin(), host.end());
  }
  return out;
}

/// (N, S, C) -> (N, C): the mean over the S tokens of each image.
inline tensor<cuda> device_densecl_mean_tokens(const tensor<cuda>& x) {
  const int64_t N = x.dim(0), S = x.dim(1), C = x.dim(2);
  tensor<cuda> y(shape{N, C}, 0.0f);
  const tensor<cuda> ones(shape{S}, 1.0f);  // (1, S) x (S, C) per image
  ops::gemm_strided_batched(cuda{}, ops::trans::no, ops::trans::no, 1, C, S, 1.0f / float(S), ones.data(), S, 0,
                            x.data(), C, S * C, 0.0f, y.data(), C, C, N);
  return y;
}

/// Adjoint of device_densecl_mean_tokens, accumulated: dx (N, S, C) += dy[n] / S at every token.
inline void device_densecl_add_mean_backward(tensor<cuda>& dx, const tensor<cuda>& dy) {
  const int64_t N = dx.dim(0), S = dx.dim(1), C = dx.dim(2);
  const tensor<cuda> ones(shape{S}, 1.0f);  // (S, 1) x (1, C) per image, beta 1
  ops::gemm_strided_batched(cuda{}, ops::trans::no, ops::trans::no, S, C, 1, 1.0f / float(S), ones.data(), 1, 0,
                            dy.data(), C, C, 1.0f, dx.data(), C, S * C, N);
}

}  // namespace ssl
