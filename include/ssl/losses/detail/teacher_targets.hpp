#pragma once
// The teacher side of the self-distillation losses (DINO, iBOT), on the CPU; written once:
//   centered_softmax(t, c, tau)   p_r = softmax((t_r - c) / tau)  over rows r of K logits  (DINO centering)
//   update_center(c, t, m)        c <- m c + (1 - m) mean_r t_r                           (after the step)
// t: any shape (..., K) read as R = numel / K rows; c: K values. The device overloads of the same
// names live in backend/cuda/teacher_targets.cuh.
#include <vector>

#include "row_math.hpp"

namespace ssl::losses_detail {

inline int64_t teacher_rows(const tensor<cpu>& t, int64_t K, const char* what) {
  check<shape_error>(K > 0 && t.rank() >= 2 && t.dim(-1) == K, what, ": expected teacher logits (..., ", K, "), got ",
                     t.shape());
  return t.numel() / K;
}

/// softmax((t_r - center) / tau) for every row r: same shape as t.
inline tensor<cpu> centered_softmax(const tensor<cpu>& t, const tensor<cpu>& center, float tau) {
  const int64_t K = center.numel(), R = teacher_rows(t, K, "centered_softmax");
  expect_positive(tau, "teacher temperature");
  tensor<cpu> p(t.shape());
  const float inv = 1.0f / tau;
  parallel_for(0, R, [&](int64_t r) {
    const float* x = t.data() + r * K;
    float* q = p.data() + r * K;
    for (int64_t k = 0; k < K; ++k) q[k] = (x[k] - center[k]) * inv;
    softmax_inplace(q, K);
  }, 4);
  return p;
}

/// center <- m center + (1 - m) mean over the rows of t (sums in double, row order).
inline void update_center(tensor<cpu>& center, const tensor<cpu>& t, float momentum) {
  const int64_t K = center.numel(), R = teacher_rows(t, K, "update_center");
  check<shape_error>(R > 0, "update_center: expected at least one teacher row, got ", t.shape());
  std::vector<double> mean(size_t(K), 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) mean[size_t(k)] += t[r * K + k];
  for (int64_t k = 0; k < K; ++k)
    center[k] = float(momentum * double(center[k]) + (1.0 - momentum) * mean[size_t(k)] / double(R));
}

}  // namespace ssl::losses_detail

#if defined(__CUDACC__)
#include "../../backend/cuda/teacher_targets.cuh"
#endif
