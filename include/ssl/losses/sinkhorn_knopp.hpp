#pragma once
// Sinkhorn-Knopp teacher targets (SwAV, Caron et al. 2020; DINOv2's `centering: sinkhorn_knopp`,
// Oquab et al. 2023), an alternative to DINO's centering that spreads the batch evenly over the K
// prototypes:
//   Q = exp(t / tau)^T                              (K, R) for R teacher rows of K logits
//   Q <- Q / sum(Q)
//   repeat n times:  Q_k. <- Q_k. / (K sum_r Q_kr)   (each prototype gets 1/K of the mass)
//                    Q_.r <- Q_.r / (R sum_k Q_kr)   (each sample gets 1/R)
//   targets = R Q^T                                 (R, K), every row sums to 1
// Computed in double; exp(t / tau) is taken after subtracting each prototype's maximum over the
// rows (the first prototype normalisation cancels any per-prototype factor), so no logit overflows
// and no prototype's mass underflows. A sample row whose mass underflows keeps 0 (PyTorch's
// float32 code would divide by zero). No state, no gradient (teacher side only).
// t: any shape (..., K), read as R = numel / K rows; the targets have t's shape. Non-finite logits
// throw numeric_error unless check_finite is false (a method that checks its loss at the end of
// the step passes false: NaN logits give NaN targets, hence a NaN loss; on the device this saves
// a host synchronisation in the middle of the step).
// Data-parallel (DINOv2's distributed Sinkhorn-Knopp): with a `sinkhorn_group`, the R rows are the
// rows of every replica together: the per-prototype maxima, the prototype sums and R itself are
// reduced over the replicas (dist::sync_sinkhorn_knopp sets the group from a communicator), so each
// replica gets its rows of the targets of the global batch.
#include <algorithm>
#include <functional>
#include <cmath>
#include <limits>
#include <vector>

#include "detail/row_math.hpp"

namespace ssl {

/// The reductions over data-parallel replicas that make Sinkhorn-Knopp global: `sum` and `max`
/// combine a float buffer elementwise over the replicas, in place (every replica gets the result).
struct sinkhorn_group {
  std::function<void(float*, int64_t)> sum, max;
};

namespace losses_detail {
/// The arguments' checks, on either backend; returns K (prototypes), R = numel / K rows follow.
/// A replica of a data-parallel group (`allow_empty`) may hold no rows: it still joins the reductions.
inline int64_t check_sinkhorn_inputs(const shape& t, float temperature, int iterations, bool allow_empty = false) {
  expect_positive(temperature, "sinkhorn_knopp temperature");
  check<value_error>(iterations >= 1, "sinkhorn_knopp: expected at least 1 iteration, got ", iterations);
  check<shape_error>(t.rank() >= 2 && t[t.rank() - 1] > 0 && (t.numel() > 0 || allow_empty),
                     "sinkhorn_knopp: expected teacher logits (..., K) with K > 0 and at least one row, got ", t);
  return t[t.rank() - 1];
}
}  // namespace losses_detail

inline tensor<cpu> sinkhorn_knopp(const tensor<cpu>& t, float temperature, int iterations = 3,
                                  bool check_finite = true, const sinkhorn_group* group = nullptr) {
  const int64_t K = losses_detail::check_sinkhorn_inputs(t.shape(), temperature, iterations, group != nullptr),
                R = t.numel() / K;
  check<value_error>(!group || (group->sum && group->max), "sinkhorn_knopp: a sinkhorn_group needs both sum and max");
  if (check_finite)
    for (int64_t i = 0; i < t.numel(); ++i)
      check<numeric_error>(std::isfinite(t[i]), "sinkhorn_knopp: expected finite teacher logits, found ", t[i],
                           " at element ", i);
  std::vector<float> top(static_cast<size_t>(K), -std::numeric_limits<float>::infinity());  // per prototype
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) top[size_t(k)] = std::max(top[size_t(k)], t[r * K + k]);
  double rows = double(R);  // R over every replica
  if (group) {
    group->max(top.data(), K);
    float n = float(R);
    group->sum(&n, 1);
    rows = double(n);
  }
  // q (R, K) row-major: q[r K + k] = Q_kr
  std::vector<double> q(size_t(R * K));
  const double inv_tau = 1.0 / double(temperature);
  parallel_for(0, R, [&](int64_t r) {
    for (int64_t k = 0; k < K; ++k)
      q[size_t(r * K + k)] = std::exp((double(t[r * K + k]) - double(top[size_t(k)])) * inv_tau);
  }, 4);
  // The first normalisation Q / sum(Q) is absorbed by the first prototype normalisation (both scale
  // every entry; the prototype sums are computed after it), so it is skipped.
  std::vector<double> proto(static_cast<size_t>(K));
  constexpr int64_t column_chunk = 64;
  for (int it = 0; it < iterations; ++it) {
    // prototype (column) sums in row order: chunks of columns in parallel, deterministic
    parallel_for(0, (K + column_chunk - 1) / column_chunk, [&](int64_t c) {
      const int64_t k0 = c * column_chunk, k1 = std::min(K, k0 + column_chunk);
      for (int64_t k = k0; k < k1; ++k) proto[size_t(k)] = 0.0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = k0; k < k1; ++k) proto[size_t(k)] += q[size_t(r * K + k)];
    });
    if (group) {  // every replica's rows: one float all-reduce of the K sums
      std::vector<float> f(proto.begin(), proto.end());
      group->sum(f.data(), K);
      std::copy(f.begin(), f.end(), proto.begin());
    }
    // "!= 0": a NaN sum (non-finite logits, unchecked) propagates instead of being zeroed
    for (int64_t k = 0; k < K; ++k) proto[size_t(k)] = proto[size_t(k)] != 0.0 ? 1.0 / (double(K) * proto[size_t(k)]) : 0.0;
    parallel_for(0, R, [&](int64_t r) {
      double* row = q.data() + r * K;
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += (row[k] *= proto[size_t(k)]);
      // each sample's mass 1/R; the final "times R" is folded in on the last iteration
      const double scale = s != 0.0 ? (it + 1 == iterations ? 1.0 : 1.0 / rows) / s : 0.0;
      for (int64_t k = 0; k < K; ++k) row[k] *= scale;
    }, 4);
  }
  tensor<cpu> out(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = float(q[size_t(i)]);
  return out;
}

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/sinkhorn_knopp.cuh"
#endif
