#pragma once
// Barlow Twins on the device, the math of ssl::barlow_twins (losses/barlow_twins.hpp):
//   z1, z2: (N, D), N >= 2;  zk' = (zk - mean_batch) / sqrt(var_batch + eps)  (biased variance)
//   c = z1'^T z2' / N  (D, D),  L = sum_i (1 - c_ii)^2 + lambda sum_{i != j} c_ij^2   (lambda 0.0051)
// Gradient: dc_ii = 2 (c_ii - 1), dc_ij = 2 lambda c_ij;  d z1' = z2' dc^T / N,  d z2' = z1' dc / N
//   (three GEMMs in all), then through the standardisation:
//   dz = (dz' - mean_b dz' - z' mean_b(dz' z')) / sqrt(var + eps).
// The value stays on the device as a (1) tensor.
#include "../../losses/barlow_twins.hpp"  // the CPU reference
#include "gemm.cuh"
#include "kernels/barlow_twins.cuh"
#include "kernels/loss_reduce.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct barlow_twins_device_result {
  tensor<cuda> value;    // (1)
  tensor<cuda> grad_z1;  // (N, D)
  tensor<cuda> grad_z2;  // (N, D)
};

/// z1, z2: (N, D) embeddings of the two views, N >= 2.
inline barlow_twins_device_result barlow_twins_loss(const tensor<cuda>& z1, const tensor<cuda>& z2,
                                                    float lambda = 0.0051f, float bn_eps = 1e-5f) {
  check<value_error>(lambda >= 0.0f && std::isfinite(lambda), "barlow_twins lambda: expected a finite value >= 0, got ",
                     lambda);
  detail::expect_positive_device(bn_eps, "barlow_twins bn_eps");
  detail::expect_device_embeddings(z1, "barlow_twins z1");
  expect_shape(z2, z1.shape(), "barlow_twins z2");
  const int64_t N = z1.dim(0), D = z1.dim(1);
  check<shape_error>(N >= 2, "barlow_twins: expected a batch of at least 2 rows, got ", z1.shape());
  const unsigned col_blocks = unsigned((D + 127) / 128);
  tensor<cuda> s1(z1.shape()), s2(z1.shape()), inv1(shape{D}), inv2(shape{D});
  gpu::kernels::standardize_columns<<<col_blocks, 128, 0, gpu::stream()>>>(z1.data(), N, D, bn_eps, s1.data(),
                                                                           inv1.data());
  SSL_CUDA_CHECK_LAUNCH("standardize_columns");
  gpu::kernels::standardize_columns<<<col_blocks, 128, 0, gpu::stream()>>>(z2.data(), N, D, bn_eps, s2.data(),
                                                                           inv2.data());
  SSL_CUDA_CHECK_LAUNCH("standardize_columns");
  // c = z1'^T z2' / N, turned into dc in place
  tensor<cuda> c(shape{D, D}), row_loss(shape{D});
  gemm(cuda{}, trans::yes, trans::no, D, D, N, 1.0f / float(N), s1.data(), D, s2.data(), D, 0.0f, c.data(), D);
  gpu::kernels::barlow_twins_rows<<<unsigned(D), detail::row_threads(D), 0, gpu::stream()>>>(c.data(), D, lambda,
                                                                                              row_loss.data());
  SSL_CUDA_CHECK_LAUNCH("barlow_twins_rows");
  barlow_twins_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(z1.shape()), tensor<cuda>(z1.shape())};
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss.data(), D, 1.0f, 0.0f,
                                                                                    r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  tensor<cuda> d1(z1.shape()), d2(z1.shape());
  const float inv_n = 1.0f / float(N);
  gemm(cuda{}, trans::no, trans::yes, N, D, D, inv_n, s2.data(), D, c.data(), D, 0.0f, d1.data(), D);
  gemm(cuda{}, trans::no, trans::no, N, D, D, inv_n, s1.data(), D, c.data(), D, 0.0f, d2.data(), D);
  gpu::kernels::standardize_columns_backward<<<col_blocks, 128, 0, gpu::stream()>>>(s1.data(), inv1.data(), d1.data(),
                                                                                    N, D, r.grad_z1.data());
  SSL_CUDA_CHECK_LAUNCH("standardize_columns_backward");
  gpu::kernels::standardize_columns_backward<<<col_blocks, 128, 0, gpu::stream()>>>(s2.data(), inv2.data(), d2.data(),
                                                                                    N, D, r.grad_z2.data());
  SSL_CUDA_CHECK_LAUNCH("standardize_columns_backward");
  return r;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::barlow_twins on device embeddings (found by barlow_twins::operator() for tensor<cuda>).
inline ops::barlow_twins_device_result device_barlow_twins(const barlow_twins& loss, const tensor<cuda>& z1,
                                                           const tensor<cuda>& z2) {
  return ops::barlow_twins_loss(z1, z2, loss.lambda(), loss.bn_eps());
}

}  // namespace ssl
