#pragma once
// NNCLR on the device (contract and CPU reference: losses/nnclr.hpp).
//   device_nnclr(loss, nn, p): G = nn_n pn^T / tau (N, N) by cuBLAS; softmax_xent_rows with the
//     diagonal as targets gives the row losses and turns G into (softmax - I) / N in place;
//     d pn = G^T nn_n / tau (cuBLAS), then back through the normalisation of p. value: (1) on the device.
//   device_nnclr_nearest(rows, F, z, index): S = zn rows[0, F)^T (N, F) by cuBLAS, knn_select with
//     k = 1 (the largest cosine, ties to the lowest row, as the CPU's max_element), one gather of the
//     winning rows. The indices reach the host only when asked.
//   device_unit_rows(z): z_i / max(|z_i|, 1e-12), the rows the support set stores.
// No host synchronisation in any of them (but the optional index download).
#include <vector>

#include "../../losses/nnclr.hpp"
#include "buffer.cuh"
#include "gemm.cuh"
#include "kernels/info_nce.cuh"    // softmax_xent_rows
#include "kernels/knn.cuh"         // knn_select
#include "kernels/loss_reduce.cuh"  // affine_sum
#include "kernels/nnclr.cuh"       // gather_indexed_rows
#include "unit_rows.cuh"

namespace ssl {

struct nnclr_device_result {
  tensor<cuda> value;   // (1)
  tensor<cuda> grad_p;  // (N, D)
};

/// ssl::nnclr on device tensors (found by nnclr::operator() for tensor<cuda>).
inline nnclr_device_result device_nnclr(const nnclr& loss, const tensor<cuda>& neighbours,
                                        const tensor<cuda>& predictions) {
  namespace od = ops::detail;
  od::expect_device_embeddings(predictions, "nnclr predictions");
  check<shape_error>(neighbours.shape() == predictions.shape(), "nnclr: expected neighbours of the predictions' shape ",
                     predictions.shape(), ", got ", neighbours.shape());
  const int64_t N = predictions.dim(0), D = predictions.dim(1);
  const float inv_t = 1.0f / loss.temperature();
  const od::unit_rows nn = od::normalize_unit_rows(neighbours, N);
  const od::unit_rows pn = od::normalize_unit_rows(predictions, N);
  tensor<cuda> G(shape{N, N});
  ops::gemm(cuda{}, ops::trans::no, ops::trans::yes, N, N, D, inv_t, nn.z.data(), D, pn.z.data(), D, 0.0f, G.data(), N);
  tensor<cuda> row_loss(shape{N});
  const float g_scale = 1.0f / float(N);
  gpu::kernels::softmax_xent_rows<<<unsigned(N), od::row_threads(N), 0, gpu::stream()>>>(G.data(), N, 1, g_scale,
                                                                                         row_loss.data());
  SSL_CUDA_CHECK_LAUNCH("softmax_xent_rows");
  nnclr_device_result r;
  r.value = tensor<cuda>(shape{1});
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss.data(), N, g_scale, 0.0f,
                                                                                    r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  tensor<cuda> dpn(shape{N, D});  // G^T nn / tau
  ops::gemm(cuda{}, ops::trans::yes, ops::trans::no, N, D, N, inv_t, G.data(), N, nn.z.data(), D, 0.0f, dpn.data(), D);
  r.grad_p = od::unit_rows_backward(pn, dpn.data());
  return r;
}

/// The support set's nearest rows of z (N, D) among rows[0, filled) (rows: (M, D), unit rows).
inline tensor<cuda> device_nnclr_nearest(const tensor<cuda>& rows, int64_t filled, const tensor<cuda>& z,
                                         std::vector<int64_t>* index) {
  const int64_t N = z.dim(0), D = z.dim(1), F = filled;
  const ops::detail::unit_rows zn = ops::detail::normalize_unit_rows(z, N);
  tensor<cuda> S(shape{N, F});
  ops::gemm(cuda{}, ops::trans::no, ops::trans::yes, N, F, D, 1.0f, zn.z.data(), D, rows.data(), D, 0.0f, S.data(), F);
  gpu::array<float> best(N);
  gpu::array<int32_t> idx(N);
  gpu::kernels::knn_select<<<unsigned(N), gpu::kernels::knn_select_threads, 0, gpu::stream()>>>(S.data(), F, 1,
                                                                                                best.data(), idx.data());
  SSL_CUDA_CHECK_LAUNCH("knn_select");
  tensor<cuda> out(shape{N, D});
  gpu::kernels::gather_indexed_rows<<<gpu::kernels::grid_for(N * D), gpu::kernels::block_size, 0, gpu::stream()>>>(
      rows.data(), idx.data(), N, D, out.data());
  SSL_CUDA_CHECK_LAUNCH("gather_indexed_rows");
  if (index) {
    std::vector<int32_t> host(static_cast<size_t>(N));
    SSL_CUDA_CHECK(cudaMemcpyAsync(host.data(), idx.data(), size_t(N) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                   gpu::stream()));
    gpu::synchronize();
    index->assign(host.begin(), host.end());
  }
  return out;
}

/// Rows of z (R, D) scaled to unit length (the support set's stored form).
inline tensor<cuda> device_unit_rows(const tensor<cuda>& z) { return ops::detail::normalize_unit_rows(z, z.dim(0)).z; }

}  // namespace ssl
