#pragma once
// The teacher side of the self-distillation losses on the device, the math of
// losses/detail/teacher_targets.hpp (its CPU overloads of the same names):
//   centered_softmax(t, c, tau)   p_r = softmax((t_r - c) / tau)   per row r of K logits (one block a row)
//   update_center(c, t, m)        c <- m c + (1 - m) mean_r t_r    (column sums, then one axpby)
// t: any shape (..., K) read as R = numel / K rows; c: K values; everything stays on the device.
#include "../../losses/detail/teacher_targets.hpp"
#include "buffer.cuh"
#include "elementwise.cuh"     // axpby
#include "kernels/dino.cuh"    // dino_teacher_probs
#include "layer_norm.cuh"      // detail::row_threads
#include "linear.cuh"          // column_sums

namespace ssl::losses_detail {

namespace device {
/// R = numel / K rows of the teacher logits t (..., K) (the CPU teacher_rows check on a device tensor).
inline int64_t teacher_rows(const tensor<cuda>& t, int64_t K, const char* what) {
  check<shape_error>(K > 0 && t.rank() >= 2 && t.dim(-1) == K, what, ": expected teacher logits (..., ", K, "), got ",
                     t.shape());
  return t.numel() / K;
}
/// p (R, K) <- softmax((t - center) / tau) row by row, for device pointers (R may be 0).
inline void centered_softmax_rows(const float* t, const float* center, int64_t R, int64_t K, float tau, float* p) {
  if (R == 0) return;
  gpu::kernels::dino_teacher_probs<<<unsigned(R), ops::detail::row_threads(K), 0, gpu::stream()>>>(t, center, K,
                                                                                                 1.0f / tau, p);
  SSL_CUDA_CHECK_LAUNCH("dino_teacher_probs");
}
}  // namespace device

/// softmax((t_r - center) / tau) for every row r: same shape as t.
inline tensor<cuda> centered_softmax(const tensor<cuda>& t, const tensor<cuda>& center, float tau) {
  const int64_t K = center.numel(), R = device::teacher_rows(t, K, "centered_softmax");
  expect_positive(tau, "teacher temperature");
  tensor<cuda> p(t.shape());
  device::centered_softmax_rows(t.data(), center.data(), R, K, tau, p.data());
  return p;
}

/// center <- m center + (1 - m) mean over the rows of t (float column sums in a fixed order).
inline void update_center(tensor<cuda>& center, const tensor<cuda>& t, float momentum) {
  const int64_t K = center.numel(), R = device::teacher_rows(t, K, "update_center");
  check<shape_error>(R > 0, "update_center: expected at least one teacher row, got ", t.shape());
  tensor<cuda> sums(center.shape());
  ops::column_sums(t.data(), sums.data(), R, K, false);
  ops::axpby((1.0f - momentum) / float(R), sums, momentum, center);
}

}  // namespace ssl::losses_detail
