#pragma once
// DINO's self-distillation loss on the device, the math of ssl::dino (losses/dino.hpp):
//   student (V, B, K), teacher (G, B, K), center (K), all on the device;
//   t_g = softmax((teacher_g - c) / tau_t),  log s_v = log_softmax(student_v / tau_s)
//   L = 1/P sum_{g, v != g} 1/B sum_b sum_k -t_gbk log s_vbk  (P pairs),
//   d student_vb = (n_v softmax(student_vb / tau_s) - sum_{g != v} t_gb) / (tau_s B P).
// dino_update_center: c <- m c + (1 - m) mean over the rows of teacher (column sums, then one axpby).
// dino::with_targets on the device (device_dino_targets): the same loss against ready teacher
// probabilities t (G, B, K) (e.g. Sinkhorn-Knopp's); dino_loss = centered_softmax, then that part.
// The loss stays on the device (one element).
#include "../../losses/dino.hpp"  // the CPU reference
#include "buffer.cuh"
#include "kernels/cross_entropy.cuh"  // scaled_sum
#include "kernels/dino.cuh"
#include "layer_norm.cuh"  // detail::row_threads
#include "teacher_targets.cuh"  // centered_softmax_rows, update_center (column sums + axpby)

namespace ssl::ops {

struct dino_device_result {
  tensor<cuda> value;         // (1)
  tensor<cuda> grad_student;  // (V, B, K)
};

namespace detail {
/// The student half of the DINO loss against teacher probabilities probs (G, B, K) on the device.
inline dino_device_result dino_against_probs(const tensor<cuda>& student, const float* probs,
                                             const losses_detail::dino_sizes& sz, int64_t K,
                                             float student_temperature) {
  const int64_t V = sz.V, B = sz.B, G = sz.G, pairs = sz.pairs;
  dino_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(student.shape())};
  float* row_loss = gpu::context::get().workspace(1, V * B);
  gpu::kernels::dino_student_rows<<<unsigned(V * B), row_threads(K), 0, gpu::stream()>>>(
      student.data(), probs, B, G, K, 1.0f / student_temperature,
      float(1.0 / (double(student_temperature) * double(B * pairs))), r.grad_student.data(), row_loss);
  SSL_CUDA_CHECK_LAUNCH("dino_student_rows");
  gpu::kernels::scaled_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      row_loss, V * B, float(1.0 / double(B * pairs)), r.value.data());
  SSL_CUDA_CHECK_LAUNCH("scaled_sum");
  return r;
}
}  // namespace detail

inline dino_device_result dino_loss(const tensor<cuda>& student, const tensor<cuda>& teacher,
                                    const tensor<cuda>& center, float student_temperature,
                                    float teacher_temperature) {
  const int64_t K = center.numel();
  check<value_error>(student_temperature > 0.0f && teacher_temperature > 0.0f,
                     "dino_loss: expected temperatures > 0, got ", student_temperature, " and ", teacher_temperature);
  check<shape_error>(K > 0, "dino_loss: expected a non-empty center, got shape ", center.shape());
  const losses_detail::dino_sizes sz = losses_detail::check_dino_inputs(student.shape(), teacher.shape(), K);
  float* probs = gpu::context::get().workspace(0, sz.G * sz.B * K);
  losses_detail::device::centered_softmax_rows(teacher.data(), center.data(), sz.G * sz.B, K, teacher_temperature,
                                               probs);
  return detail::dino_against_probs(student, probs, sz, K, student_temperature);
}

/// center (K) <- m center + (1 - m) mean over the rows of teacher (..., K).
inline void dino_update_center(tensor<cuda>& center, const tensor<cuda>& teacher, float momentum) {
  const int64_t K = center.numel();
  check<shape_error>(K > 0 && teacher.rank() >= 2 && teacher.dim(-1) == K && teacher.numel() > 0,
                     "dino_update_center: expected teacher outputs (..., ", K, "), got ", teacher.shape());
  check<value_error>(momentum >= 0.0f && momentum <= 1.0f, "dino_update_center: momentum must be in [0, 1], got ",
                     momentum);
  losses_detail::update_center(center, teacher, momentum);
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::dino on device logits (found by dino::operator() for tensor<cuda>).
inline ops::dino_device_result device_dino(const dino& loss, const tensor<cuda>& student, const tensor<cuda>& teacher,
                                           const tensor<cuda>& center) {
  check<shape_error>(center.numel() == loss.center().numel(), "dino: expected a center of ", loss.center().numel(),
                     " values, got shape ", center.shape());
  return ops::dino_loss(student, teacher, center, loss.student_temperature(), loss.teacher_temperature());
}
/// dino::with_targets on the device: student (V, B, K) logits against teacher probabilities t (G, B, K).
inline ops::dino_device_result device_dino_targets(const dino& loss, const tensor<cuda>& student,
                                                   const tensor<cuda>& targets) {
  const int64_t K = loss.center().numel();
  check<shape_error>(K > 0, "dino: default-constructed loss (no out_dim)");
  const losses_detail::dino_sizes sz = losses_detail::check_dino_inputs(student.shape(), targets.shape(), K);
  return ops::detail::dino_against_probs(student, targets.data(), sz, K, loss.student_temperature());
}
inline void device_dino_update_center(const dino& loss, tensor<cuda>& center, const tensor<cuda>& teacher) {
  ops::dino_update_center(center, teacher, loss.center_momentum());
}

}  // namespace ssl
