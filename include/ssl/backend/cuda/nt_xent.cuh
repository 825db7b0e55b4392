#pragma once
// NT-Xent (SimCLR) on the device, same math as ssl::nt_xent (losses/nt_xent.hpp):
//   z: (2N, D), zn = z / |z|, S = zn zn^T / tau (2N, 2N), diagonal masked, positive p(i) = i +- N,
//   L = 1/(2N) sum_i [ logsumexp_{j != i} S_ij - S_i,p(i) ]
//   G = (P - onehot(p)) / 2N,  d zn = (G + G^T) zn / tau  (two GEMMs: G zn, then + G^T zn),
//   then back through the normalisation.
// The loss stays on the device (value, one element), so a training step never waits for it.
#include "../../losses/nt_xent.hpp"
#include "gemm.cuh"
#include "kernels/nt_xent.cuh"
#include "layer_norm.cuh"  // detail::row_threads

namespace ssl::ops {

struct nt_xent_device_result {
  tensor<cuda> value;   // (1): the loss
  tensor<cuda> grad_z;  // (2N, D)
};

/// Loss and gradient of NT-Xent at temperature tau for z (2N, D).
inline nt_xent_device_result nt_xent(const tensor<cuda>& z, float temperature) {
  check<value_error>(temperature > 0.0f, "nt_xent temperature: expected a positive value, got ", temperature);
  check<shape_error>(z.rank() == 2 && z.dim(0) % 2 == 0 && z.dim(0) >= 2 && z.dim(1) > 0,
                     "nt_xent z: expected (2N, D) with an even number of rows, got ", z.shape());
  const int64_t R = z.dim(0), D = z.dim(1);
  const float inv_t = 1.0f / temperature, eps = 1e-12f;
  const int threads_d = detail::row_threads(D);
  gpu::context& ctx = gpu::context::get();
  float* zn = ctx.workspace(0, R * D);
  float* norm = ctx.workspace(1, R);
  float* S = ctx.workspace(2, R * R);
  float* row_loss = ctx.workspace(3, R);
  float* dzn = ctx.workspace(4, R * D);
  gpu::kernels::normalize_rows<<<unsigned(R), threads_d, 0, gpu::stream()>>>(z.data(), D, eps, zn, norm);
  SSL_CUDA_CHECK_LAUNCH("normalize_rows");
  gemm(cuda{}, trans::no, trans::yes, R, R, D, inv_t, zn, D, zn, D, 0.0f, S, R);
  gpu::kernels::nt_xent_rows<<<unsigned(R), detail::row_threads(R), 0, gpu::stream()>>>(S, R, R, row_loss);
  SSL_CUDA_CHECK_LAUNCH("nt_xent_rows");
  nt_xent_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(z.shape())};
  gpu::kernels::mean_of<<<1, 512, 0, gpu::stream()>>>(row_loss, R, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("mean_of");
  gemm(cuda{}, trans::no, trans::no, R, D, R, inv_t, S, R, zn, D, 0.0f, dzn, D);
  gemm(cuda{}, trans::yes, trans::no, R, D, R, inv_t, S, R, zn, D, 1.0f, dzn, D);
  gpu::kernels::normalize_rows_backward<<<unsigned(R), threads_d, 0, gpu::stream()>>>(zn, norm, dzn, D, eps,
                                                                                       r.grad_z.data());
  SSL_CUDA_CHECK_LAUNCH("normalize_rows_backward");
  return r;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::nt_xent on device embeddings (found by nt_xent::operator() for tensor<cuda>).
inline ops::nt_xent_device_result device_nt_xent(const nt_xent& loss, const tensor<cuda>& z) {
  return ops::nt_xent(z, loss.temperature());
}

}  // namespace ssl
