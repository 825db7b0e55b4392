#pragma once
// DINO's self-distillation loss (Caron et al. 2021, "Emerging Properties in
// Self-Supervised Vision Transformers").
//
// student: (V, B, K) outputs for V crops (the G global crops first), teacher: (G, B, K).
//   t_g = softmax((teacher_g - c) / tau_t)      (centred, sharpened; stop-gradient)
//   log s_v = log_softmax(student_v / tau_s)
//   L = 1/P sum_{g, v != g} 1/B sum_b sum_k -t_gbk log s_vbk,   P = number of such pairs.
// Gradient: with n_v the number of teacher crops paired with student crop v and
//   T_v = sum_{g != v} t_g,  d student_vb = (n_v softmax(student_vb / tau_s) - T_vb) / (tau_s B P).
// The center c (K) is state: `update_center(teacher)` after the step sets
//   c <- m c + (1 - m) mean_{g, b} teacher_gb.
// The teacher temperature is schedulable: set_teacher_temperature, or warmup_teacher_temperature
// (DINO's linear warm-up over the first epochs, then constant).
// with_targets(student, t) takes ready teacher probabilities t (G, B, K) instead (e.g. DINOv2's
// Sinkhorn-Knopp targets, losses/sinkhorn_knopp.hpp); operator() = with_targets(student,
// teacher_probabilities(teacher)).
#include "detail/row_math.hpp"
#include "detail/distillation_state.hpp"
#include "../core/profile.hpp"

namespace ssl {

struct dino_result {
  float value = 0;
  tensor<cpu> grad_student;  // (V, B, K)
};

namespace losses_detail {
/// The sizes of a DINO loss call: V student crops, batch B, G teacher crops, and the number of
/// (teacher, student) pairs of different crops.
struct dino_sizes {
  int64_t V, B, G, pairs;
};
/// Validates student (V, B, K) and teacher (G, B, K) logits, 1 <= G <= V, on either backend.
inline dino_sizes check_dino_inputs(const shape& student, const shape& teacher, int64_t K) {
  check<shape_error>(student.rank() == 3 && student[2] == K && student[1] > 0 && student[0] > 0,
                     "dino student: expected (V, B, ", K, "), got ", student);
  const int64_t V = student[0], B = student[1];
  check<shape_error>(teacher.rank() == 3 && teacher[1] == B && teacher[2] == K && teacher[0] >= 1 && teacher[0] <= V,
                     "dino teacher: expected (G, ", B, ", ", K, ") with 1 <= G <= ", V, ", got ", teacher);
  const int64_t G = teacher[0];
  int64_t pairs = 0;
  for (int64_t v = 0; v < V; ++v) pairs += v < G ? G - 1 : G;
  check<shape_error>(pairs > 0, "dino: no (teacher, student) pairs with different crops: 1 teacher crop and 1 student crop");
  return {V, B, G, pairs};
}
}  // namespace losses_detail

/// The state (temperatures, center momentum, center (K)) and its accessors, teacher_probabilities
/// and the host update_center are losses_detail::distillation_state's.
class dino : public losses_detail::distillation_state {
 public:
  dino() : distillation_state("dino") {}
  dino(int64_t out_dim, float student_temperature = 0.1f, float teacher_temperature = 0.04f,
       float center_momentum = 0.9f)
      : distillation_state("dino", out_dim, student_temperature, teacher_temperature, center_momentum) {}

  /// DINO's schedule: linear from `start` to `end` over `warmup_epochs`, then `end`.
  static float warmup_teacher_temperature(float start, float end, int warmup_epochs, int epoch) {
    if (epoch >= warmup_epochs || warmup_epochs <= 1) return end;
    return start + (end - start) * float(epoch) / float(warmup_epochs - 1);
  }

  // student: (V, B, K), teacher: (G, B, K) with 1 <= G <= V
  dino_result operator()(const tensor<cpu>& student, const tensor<cpu>& teacher) const {
    SSL_PROFILE_SCOPE("dino loss");
    expect_out_dim();
    losses_detail::check_dino_inputs(student.shape(), teacher.shape(), out_dim());
    return with_targets(student, teacher_probabilities(teacher));
  }

  /// The loss against ready teacher probabilities t (G, B, K) (each row summing to 1).
  dino_result with_targets(const tensor<cpu>& student, const tensor<cpu>& t) const {
    namespace ld = losses_detail;
    expect_out_dim();
    const int64_t K = out_dim();
    const losses_detail::dino_sizes sz = losses_detail::check_dino_inputs(student.shape(), t.shape(), K);
    const int64_t V = sz.V, B = sz.B, G = sz.G, pairs = sz.pairs;
    const float inv_ts = 1.0f / student_temperature();

    dino_result res;
    res.grad_student = tensor<cpu>(student.shape());
    std::vector<double> row_loss(size_t(V * B));
    const float g_scale = inv_ts / float(B * pairs);
    parallel_for(0, V * B, [&](int64_t r) {
      const int64_t v = r / B, b = r % B;
      const float* x = student.data() + r * K;
      float* d = res.grad_student.data() + r * K;  // holds softmax, then the gradient
      for (int64_t k = 0; k < K; ++k) d[k] = x[k] * inv_ts;
      const double lse = ld::softmax_inplace(d, K);
      const int64_t n_v = v < G ? G - 1 : G;
      double loss = 0;
      for (int64_t k = 0; k < K; ++k) {
        float tsum = 0;
        for (int64_t g = 0; g < G; ++g)
          if (g != v) tsum += t[(g * B + b) * K + k];
        // -sum_k T_k log s_k with log s_k = x_k / tau_s - lse
        loss += double(tsum) * (lse - double(x[k]) * inv_ts);
        d[k] = (float(n_v) * d[k] - tsum) * g_scale;
      }
      row_loss[size_t(r)] = loss;
    }, 4);
    res.value = float(ld::ordered_sum(row_loss) / double(B * pairs));
    return res;
  }

  /// Device logits (backend/cuda/dino_loss.cuh, under nvcc): the same loss with the center given
  /// on the device (a device method keeps its center there); `value` stays a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& student, const tensor<B>& teacher, const tensor<B>& center) const {
    return device_dino(*this, student, teacher, center);
  }
  /// Device logits against ready device teacher probabilities (G, B, K) (backend/cuda/dino_loss.cuh).
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto with_targets(const tensor<B>& student, const tensor<B>& targets) const {
    return device_dino_targets(*this, student, targets);
  }
  /// center (K) on the device <- m center + (1 - m) mean over the teacher rows.
  template <class B>
    requires(!std::same_as<B, cpu>)
  void update_center(tensor<B>& center, const tensor<B>& teacher) const {
    device_dino_update_center(*this, center, teacher);
  }

  /// The host update_center(teacher) (c <- m c + (1 - m) mean over the teacher rows).
  using distillation_state::update_center;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/dino_loss.cuh"
#endif
