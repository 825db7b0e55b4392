#pragma once
// Triplet mining on the device, the math of ssl::triplet_mining (losses/triplet.hpp):
//   x: (N, D) on the device, labels: N class ids (host span, checked on the host, uploaded).
//   Pairwise distances D (N, N) from the Gram matrix X X^T (one cuBLAS GEMM; X = rows of x made
//   unit for the cosine distance): |x_i|^2 + |x_j|^2 - 2 x_i.x_j clamped at 0, or 1 - cos.
//   Mining, one block per anchor (kernels/triplet_mining.cuh):
//     batch_all:  every (a, p, n), y_a = y_p, a != p, y_n != y_a; mean over the terms > 0;
//     batch_hard: per anchor the farthest positive and the closest negative; mean over anchors
//                 that have both;
//     semi_hard:  per positive pair the closest negative with D_an > D_ap, else the farthest
//                 negative; mean over positive pairs.
//   Ties go to the lowest index, as on the CPU. No valid triplet: value 0, gradient 0.
// Gradient: W = dL/dD = (R + R^T) / count, R's row a written by anchor a's block alone (counts of
//   active terms, no atomics, deterministic); then
//     squared: dx = 2 rowsum(W) x - 2 W x  (GEMM + a row kernel);
//     cosine:  d xn = -W xn (GEMM), then back through the row normalisation.
// The value and the term count stay on the device.
#include <span>
#include <vector>

#include "../../losses/triplet.hpp"  // the CPU reference, triplet_strategy, triplet_distance
#include "gemm.cuh"
#include "kernels/triplet_mining.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct triplet_mining_device_result {
  tensor<cuda> value;             // (1)
  tensor<cuda> grad_x;            // (N, D)
  gpu::array<int64_t> triplets;   // (1): terms averaged over, as triplet_mining_result::triplets
};

/// x: (N, D) embeddings on the device; labels: N class ids on the host.
inline triplet_mining_device_result triplet_mining_loss(const tensor<cuda>& x, std::span<const int64_t> labels,
                                                        triplet_strategy strategy = triplet_strategy::batch_hard,
                                                        float margin = 1.0f,
                                                        triplet_distance distance = triplet_distance::squared_euclidean) {
  // Host checks, in the CPU class's terms, before any device work.
  check<value_error>(margin >= 0.0f && std::isfinite(margin),
                     "triplet_mining margin: expected a finite value >= 0, got ", margin);
  check<shape_error>(x.rank() == 2, "triplet_mining x: expected (N, D) embeddings, got shape ", x.shape());
  check<shape_error>(int64_t(labels.size()) == x.dim(0), "triplet_mining labels: expected ", x.dim(0),
                     " labels, got ", labels.size());
  detail::expect_device_embeddings(x, "triplet_mining x");
  const int64_t N = x.dim(0), D = x.dim(1);
  const bool cosine = distance == triplet_distance::cosine;
  const int mode = strategy == triplet_strategy::batch_all   ? gpu::kernels::mining_batch_all
                   : strategy == triplet_strategy::batch_hard ? gpu::kernels::mining_batch_hard
                                                              : gpu::kernels::mining_semi_hard;

  gpu::array<int64_t> dlabels(N);
  SSL_CUDA_CHECK(cudaMemcpyAsync(dlabels.data(), labels.data(), dlabels.bytes(), cudaMemcpyHostToDevice, gpu::stream()));

  detail::unit_rows xn;
  if (cosine) xn = detail::normalize_unit_rows(x, N);
  const tensor<cuda>& X = cosine ? xn.z : x;

  // Gram, then distances.
  tensor<cuda> gram(shape{N, N}), dist(shape{N, N});
  gemm(cuda{}, trans::no, trans::yes, N, N, D, 1.0f, X.data(), D, X.data(), D, 0.0f, gram.data(), N);
  gpu::kernels::triplet_pairwise_distances<<<gpu::kernels::grid_for(N * N), gpu::kernels::block_size, 0,
                                             gpu::stream()>>>(gram.data(), N, cosine, dist.data());
  SSL_CUDA_CHECK_LAUNCH("triplet_pairwise_distances");

  // Mining: row a of R (reusing the Gram buffer) and the per-anchor partial sums.
  tensor<cuda>& R = gram;
  gpu::array<int32_t> sel(mode == gpu::kernels::mining_semi_hard ? N * N : 0);
  gpu::array<double> row_total(N), row_count(N);
  gpu::kernels::triplet_mine_rows<<<unsigned(N), detail::row_threads(N), 0, gpu::stream()>>>(
      dist.data(), dlabels.data(), N, mode, margin, R.data(), sel.data(), row_total.data(), row_count.data());
  SSL_CUDA_CHECK_LAUNCH("triplet_mine_rows");

  triplet_mining_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(), gpu::array<int64_t>(1)};
  tensor<cuda> scale(shape{1});
  gpu::kernels::triplet_mining_finish<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      row_total.data(), row_count.data(), N, r.value.data(), r.triplets.data(), scale.data());
  SSL_CUDA_CHECK_LAUNCH("triplet_mining_finish");

  // W = (R + R^T) / count into the distance buffer (no longer needed).
  tensor<cuda>& W = dist;
  gpu::kernels::triplet_symmetric_weights<<<gpu::kernels::grid_for(N * N), gpu::kernels::block_size, 0,
                                            gpu::stream()>>>(R.data(), N, scale.data(), W.data());
  SSL_CUDA_CHECK_LAUNCH("triplet_symmetric_weights");

  tensor<cuda> dX(shape{N, D});
  if (cosine) {
    // D = 1 - Xn Xn^T  =>  d Xn = -W Xn
    gemm(cuda{}, trans::no, trans::no, N, D, N, -1.0f, W.data(), N, X.data(), D, 0.0f, dX.data(), D);
    r.grad_x = detail::unit_rows_backward(xn, dX.data());
  } else {
    // D_ij = |x_i|^2 + |x_j|^2 - 2 x_i.x_j  =>  dx = 2 (rowsum(W) x - W x)
    gemm(cuda{}, trans::no, trans::no, N, D, N, -2.0f, W.data(), N, X.data(), D, 0.0f, dX.data(), D);
    gpu::kernels::triplet_add_rowsum<<<unsigned(N), detail::row_threads(std::max(N, D)), 0, gpu::stream()>>>(
        W.data(), X.data(), N, D, dX.data());
    SSL_CUDA_CHECK_LAUNCH("triplet_add_rowsum");
    r.grad_x = std::move(dX);
  }
  return r;
}
inline triplet_mining_device_result triplet_mining_loss(const tensor<cuda>& x, const std::vector<int64_t>& labels,
                                                        triplet_strategy strategy = triplet_strategy::batch_hard,
                                                        float margin = 1.0f,
                                                        triplet_distance distance = triplet_distance::squared_euclidean) {
  return triplet_mining_loss(x, std::span<const int64_t>(labels), strategy, margin, distance);
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::triplet_mining on device embeddings (found by triplet_mining::operator() for tensor<cuda>).
inline ops::triplet_mining_device_result device_triplet_mining(const triplet_mining& loss, const tensor<cuda>& x,
                                                               std::span<const int64_t> labels) {
  return ops::triplet_mining_loss(x, labels, loss.strategy(), loss.margin(), loss.distance());
}

}  // namespace ssl
