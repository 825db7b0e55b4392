#pragma once
// KoLeo regulariser on the device, the math of ssl::koleo (losses/koleo.hpp):
//   x: (N, D), N >= 2;  zn = x / max(|x|, eps) (eps 1e-8);  dots = zn zn^T (one GEMM);
//   j(i) = argmax_{j != i} dots_ij;  r_i = |zn_i - zn_j(i) + eps|;  L = -1/N sum_i log(r_i + eps).
// Gradient: du_i = -u_i / (N r_i (r_i + eps)), d zn_i += du_i, d zn_j(i) -= du_i (a gather per
//   row, deterministic), then back through the normalisation. The neighbour choice has no gradient.
// The value stays on the device as a (1) tensor.
#include "../../losses/koleo.hpp"  // the CPU reference
#include "gemm.cuh"
#include "kernels/koleo.cuh"
#include "kernels/loss_reduce.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct koleo_device_result {
  tensor<cuda> value;   // (1)
  tensor<cuda> grad_x;  // (N, D)
};

/// x: (N, D) embeddings, N >= 2.
inline koleo_device_result koleo_loss(const tensor<cuda>& x, float eps = 1e-8f) {
  detail::expect_positive_device(eps, "koleo eps");
  detail::expect_device_embeddings(x, "koleo x");
  const int64_t N = x.dim(0), D = x.dim(1);
  check<shape_error>(N >= 2, "koleo x: expected at least 2 rows (a nearest neighbour), got ", x.shape());
  const detail::unit_rows xn = detail::normalize_unit_rows(x, N, eps);
  tensor<cuda> dots(shape{N, N}), du(shape{N, D}), dz(shape{N, D}), row_loss(shape{N});
  gpu::array<int64_t> neighbour(N);
  gemm(cuda{}, trans::no, trans::yes, N, N, D, 1.0f, xn.z.data(), D, xn.z.data(), D, 0.0f, dots.data(), N);
  gpu::kernels::koleo_rows<<<unsigned(N), detail::row_threads(std::max(N, D)), 0, gpu::stream()>>>(
      dots.data(), xn.z.data(), N, D, eps, neighbour.data(), du.data(), row_loss.data());
  SSL_CUDA_CHECK_LAUNCH("koleo_rows");
  gpu::kernels::koleo_gather<<<unsigned(N), detail::row_threads(D), 0, gpu::stream()>>>(du.data(), neighbour.data(), N,
                                                                                          D, dz.data());
  SSL_CUDA_CHECK_LAUNCH("koleo_gather");
  koleo_device_result r{tensor<cuda>(shape{1}), detail::unit_rows_backward(xn, dz.data())};
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss.data(), N, 1.0f / float(N),
                                                                                    0.0f, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  return r;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::koleo on device embeddings (found by koleo::operator() for tensor<cuda>).
inline ops::koleo_device_result device_koleo(const koleo& loss, const tensor<cuda>& x) {
  return ops::koleo_loss(x, loss.eps());
}

}  // namespace ssl
