#pragma once
// VICReg on the device, the math of ssl::vicreg (losses/vicreg.hpp):
//   x, y: (N, D), N >= 2;  xc = x - mean_batch(x);  s_d = sqrt(var_unbiased_d + eps);  C = xc^T xc / (N - 1)
//   L = sim inv + std var + cov cov, with
//   inv = 1/(N D) sum (x - y)^2,  var = 1/(2D) sum_d relu(1 - s_x,d) + (same for y),
//   cov = 1/D sum_{i != j} C_x,ij^2 + (same for y)          (defaults 25, 25, 1; eps 1e-4)
// Gradient: 2 sim (x - y) / (N D) for x (negated for y), plus per branch xc M, M the (D, D) matrix
//   with M_ii = -[s_i < 1] std / (2 D (N - 1) s_i), M_ij = 4 cov C_ij / (D (N - 1)) (one GEMM each way).
// The per-row / per-column terms of the value land in one buffer summed once; the value stays on
// the device as a (1) tensor.
#include "../../losses/vicreg.hpp"  // the CPU reference
#include "gemm.cuh"
#include "kernels/loss_reduce.cuh"
#include "kernels/vicreg.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct vicreg_device_result {
  tensor<cuda> value;   // (1)
  tensor<cuda> grad_x;  // (N, D)
  tensor<cuda> grad_y;  // (N, D)
};

namespace detail {
// Adds one branch's variance + covariance gradient to g; writes its D value terms to term.
inline void vicreg_branch(const tensor<cuda>& x, tensor<cuda>& g, float std_coeff, float cov_coeff, float eps,
                          float* term) {
  const int64_t N = x.dim(0), D = x.dim(1);
  tensor<cuda> xc(x.shape()), sd(shape{D}), C(shape{D, D});
  gpu::kernels::center_columns<<<unsigned((D + 127) / 128), 128, 0, gpu::stream()>>>(x.data(), N, D, eps, xc.data(),
                                                                                      sd.data());
  SSL_CUDA_CHECK_LAUNCH("center_columns");
  gemm(cuda{}, trans::yes, trans::no, D, D, N, 1.0f / float(N - 1), xc.data(), D, xc.data(), D, 0.0f, C.data(), D);
  gpu::kernels::vicreg_covariance_rows<<<unsigned(D), row_threads(D), 0, gpu::stream()>>>(
      C.data(), sd.data(), D, N, std_coeff, cov_coeff, term);
  SSL_CUDA_CHECK_LAUNCH("vicreg_covariance_rows");
  gemm(cuda{}, trans::no, trans::no, N, D, D, 1.0f, xc.data(), D, C.data(), D, 1.0f, g.data(), D);
}
}  // namespace detail

/// x, y: (N, D) embeddings of the two views, N >= 2.
inline vicreg_device_result vicreg_loss(const tensor<cuda>& x, const tensor<cuda>& y, float sim_coeff = 25.0f,
                                        float std_coeff = 25.0f, float cov_coeff = 1.0f, float eps = 1e-4f) {
  for (float c : {sim_coeff, std_coeff, cov_coeff})
    check<value_error>(c >= 0.0f && std::isfinite(c), "vicreg coefficient: expected a finite value >= 0, got ", c);
  detail::expect_positive_device(eps, "vicreg eps");
  detail::expect_device_embeddings(x, "vicreg x");
  expect_shape(y, x.shape(), "vicreg y");
  const int64_t N = x.dim(0), D = x.dim(1);
  check<shape_error>(N >= 2, "vicreg: expected a batch of at least 2 rows, got ", x.shape());
  vicreg_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(x.shape()), tensor<cuda>(x.shape())};
  // terms: [0, N) invariance rows, [N, N + D) branch x, [N + D, N + 2D) branch y
  tensor<cuda> terms(shape{N + 2 * D});
  const float nd = float(N * D);
  gpu::kernels::vicreg_invariance_rows<<<unsigned(N), detail::row_threads(D), 0, gpu::stream()>>>(
      x.data(), y.data(), D, 2.0f * sim_coeff / nd, sim_coeff / nd, r.grad_x.data(), r.grad_y.data(), terms.data());
  SSL_CUDA_CHECK_LAUNCH("vicreg_invariance_rows");
  detail::vicreg_branch(x, r.grad_x, std_coeff, cov_coeff, eps, terms.data() + N);
  detail::vicreg_branch(y, r.grad_y, std_coeff, cov_coeff, eps, terms.data() + N + D);
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(terms.data(), N + 2 * D, 1.0f,
                                                                                    0.0f, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  return r;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::vicreg on device embeddings (found by vicreg::operator() for tensor<cuda>).
inline ops::vicreg_device_result device_vicreg(const vicreg& loss, const tensor<cuda>& x, const tensor<cuda>& y) {
  return ops::vicreg_loss(x, y, loss.sim_coeff(), loss.std_coeff(), loss.cov_coeff(), loss.eps());
}

}  // namespace ssl
