#pragma once
// BYOL's normalised regression and SimSiam's negative cosine on the device, the math of
// ssl::byol / ssl::simsiam (losses/byol.hpp, losses/simsiam.hpp); one shared core:
//   p: (N, D) predictions, z: (N, D) targets (stop-gradient),
//   value = offset + coef / N sum_i cos(p_i, z_i),   d pn_i = coef / N zn_i, back through |p_i|.
//   BYOL: offset 2, coef -2 (= 1/N sum |pn - zn|^2);  SimSiam: offset 0, coef -1.
// One fused kernel per row (norms, cosine, gradient), then one reduction; the value stays on
// the device as a (1) tensor. device_byol / device_simsiam are what ssl::byol and ssl::simsiam
// call on device tensors (found by ADL).
#include "../../losses/simsiam.hpp"  // the CPU references
#include "kernels/byol.cuh"
#include "kernels/loss_reduce.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct cosine_regression_device_result {
  tensor<cuda> value;   // (1)
  tensor<cuda> grad_p;  // (N, D)
};

/// value = offset + coef / N sum_i cos(p_i, z_i); gradient w.r.t. p only.
inline cosine_regression_device_result cosine_regression_loss(const tensor<cuda>& p, const tensor<cuda>& z,
                                                              float offset, float coef, const char* who) {
  detail::expect_device_embeddings(p, who);
  check<shape_error>(z.shape() == p.shape(), who, ": expected targets of shape ", p.shape(),
                     " (as the predictions), got ", z.shape());
  const int64_t N = p.dim(0), D = p.dim(1);
  cosine_regression_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(p.shape())};
  tensor<cuda> cos(shape{N});
  gpu::kernels::cosine_regression_rows<<<unsigned(N), detail::row_threads(D), 0, gpu::stream()>>>(
      p.data(), z.data(), D, 1e-12f, coef / float(N), r.grad_p.data(), cos.data());
  SSL_CUDA_CHECK_LAUNCH("cosine_regression_rows");
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(cos.data(), N, coef / float(N),
                                                                                    offset, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  return r;
}

/// BYOL: p (N, D) online predictions, z (N, D) target projections.
inline cosine_regression_device_result byol_loss(const tensor<cuda>& p, const tensor<cuda>& z) {
  return cosine_regression_loss(p, z, 2.0f, -2.0f, "byol");
}

/// SimSiam: D(p, z) = -1/N sum_i cos(p_i, z_i).
inline cosine_regression_device_result simsiam_loss(const tensor<cuda>& p, const tensor<cuda>& z) {
  return cosine_regression_loss(p, z, 0.0f, -1.0f, "simsiam");
}

}  // namespace ssl::ops

namespace ssl {

class simsiam;  // complete or not here, depending on which loss header was included first

/// ssl::byol on device tensors (found by byol::operator() for tensor<cuda>).
inline ops::cosine_regression_device_result device_byol(const byol&, const tensor<cuda>& p, const tensor<cuda>& z) {
  return ops::byol_loss(p, z);
}

/// ssl::simsiam on device tensors (found by simsiam::operator() for tensor<cuda>).
inline ops::cosine_regression_device_result device_simsiam(const simsiam&, const tensor<cuda>& p,
                                                           const tensor<cuda>& z) {
  return ops::simsiam_loss(p, z);
}

}  // namespace ssl
