#pragma once
// Triplet loss on the device, the math of ssl::triplet (losses/triplet.hpp; the mining variant
// is in triplet_mining.cuh):
//   anchors a, positives p, negatives n: (N, D);  L = 1/N sum_i max(0, d(a_i, p_i) - d(a_i, n_i) + m),
//   d = |x - y|^2 (squared Euclidean) or 1 - cos(x, y) (cosine: rows normalised first, and the
//   gradients go back through the normalisation). One block per row; the value stays on the device.
#include "../../losses/triplet.hpp"  // the CPU reference
#include "kernels/loss_reduce.cuh"
#include "kernels/triplet.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct triplet_device_result {
  tensor<cuda> value;          // (1)
  tensor<cuda> grad_anchor;    // (N, D)
  tensor<cuda> grad_positive;  // (N, D)
  tensor<cuda> grad_negative;  // (N, D)
};

inline triplet_device_result triplet_loss(const tensor<cuda>& anchor, const tensor<cuda>& positive,
                                          const tensor<cuda>& negative, float margin = 1.0f,
                                          triplet_distance distance = triplet_distance::squared_euclidean) {
  check<value_error>(margin >= 0.0f && std::isfinite(margin), "triplet margin: expected a finite value >= 0, got ",
                     margin);
  detail::expect_device_embeddings(anchor, "triplet anchor");
  expect_shape(positive, anchor.shape(), "triplet positive");
  expect_shape(negative, anchor.shape(), "triplet negative");
  const int64_t N = anchor.dim(0), D = anchor.dim(1);
  const bool cosine = distance == triplet_distance::cosine;
  detail::unit_rows an, pn, nn;
  if (cosine) {
    an = detail::normalize_unit_rows(anchor, N);
    pn = detail::normalize_unit_rows(positive, N);
    nn = detail::normalize_unit_rows(negative, N);
  }
  const tensor<cuda>& A = cosine ? an.z : anchor;
  const tensor<cuda>& P = cosine ? pn.z : positive;
  const tensor<cuda>& Q = cosine ? nn.z : negative;
  triplet_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(anchor.shape()), tensor<cuda>(anchor.shape()),
                          tensor<cuda>(anchor.shape())};
  tensor<cuda> row_loss(shape{N});
  gpu::kernels::triplet_rows<<<unsigned(N), detail::row_threads(D), 0, gpu::stream()>>>(
      A.data(), P.data(), Q.data(), D, margin, cosine, 1.0f / float(N), r.grad_anchor.data(), r.grad_positive.data(),
      r.grad_negative.data(), row_loss.data());
  SSL_CUDA_CHECK_LAUNCH("triplet_rows");
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss.data(), N, 1.0f / float(N),
                                                                                    0.0f, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  if (cosine) {
    r.grad_anchor = detail::unit_rows_backward(an, r.grad_anchor.data());
    r.grad_positive = detail::unit_rows_backward(pn, r.grad_positive.data());
    r.grad_negative = detail::unit_rows_backward(nn, r.grad_negative.data());
  }
  return r;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::triplet on device embeddings (found by triplet::operator() for tensor<cuda>).
inline ops::triplet_device_result device_triplet(const triplet& loss, const tensor<cuda>& anchor,
                                                 const tensor<cuda>& positive, const tensor<cuda>& negative) {
  return ops::triplet_loss(anchor, positive, negative, loss.margin(), loss.distance());
}

}  // namespace ssl
