#pragma once
// iBOT's masked-patch self-distillation loss (Zhou et al. 2022, "iBOT: Image BERT Pre-Training with
// Online Tokenizer"), as DINOv2 uses it (Oquab et al. 2023, ibot_patch_loss):
//   the student sees N images with some patches replaced by a mask token, the teacher the
//   unmasked images; both heads run on the M hidden patches' output tokens.
//   student: (M, K) logits of the hidden patches, grouped by image (image n has M_n rows, in order)
//   targets: (M, K) teacher probabilities of the same patches (centered softmax or Sinkhorn-Knopp)
//   L = 1/N sum_n 1/M_n sum_{p in n} sum_k -t_pk log softmax(s_p / tau_s)_k
//   (an image without hidden patches adds 0 but still counts in N, as DINOv2's forward_masked)
// Gradient: d s_p = w_p (softmax(s_p / tau_s) sum_k t_pk - t_p) / tau_s,  w_p = 1 / (N M_n).
// The patch center (K) is the loss's state, as DINO's: teacher_probabilities(t) centres and
// sharpens raw teacher logits with it, update_center(t) moves it after the step.
#include <numeric>
#include <vector>

#include "detail/row_math.hpp"
#include "detail/distillation_state.hpp"
#include "../core/profile.hpp"

namespace ssl {

struct ibot_patch_result {
  float value = 0;
  tensor<cpu> grad_student;  // (M, K)
};

namespace losses_detail {
/// Checks student (M, K) against targets (M, K) and the per-image hidden counts (N values summing
/// to M); returns w_p = 1 / (N M_n) for every row p.
inline std::vector<float> ibot_row_weights(const shape& student, const shape& targets, int64_t K,
                                           const std::vector<int64_t>& hidden_per_image) {
  check<shape_error>(student.rank() == 2 && student[1] == K, "ibot_patch student: expected (M, ", K, "), got ",
                     student);
  check<shape_error>(targets == student, "ibot_patch targets: expected the student's shape ", student, ", got ",
                     targets);
  const int64_t N = int64_t(hidden_per_image.size());
  check<value_error>(N >= 1, "ibot_patch: expected the hidden-patch counts of at least 1 image, got none");
  int64_t M = 0;
  for (int64_t c : hidden_per_image) {
    check<value_error>(c >= 0, "ibot_patch: expected non-negative hidden-patch counts, got ", c);
    M += c;
  }
  check<shape_error>(M == student[0], "ibot_patch: the hidden-patch counts add up to ", M, " rows, the student has ",
                     student[0]);
  std::vector<float> w;
  w.reserve(size_t(M));
  for (int64_t c : hidden_per_image)
    for (int64_t j = 0; j < c; ++j) w.push_back(float(1.0 / (double(N) * double(c))));
  return w;
}
}  // namespace losses_detail

/// The state (temperatures, center momentum, patch center (K)) and its accessors (out_dim,
/// center, load_center, ...), teacher_probabilities and update_center are
/// losses_detail::distillation_state's.
class ibot_patch : public losses_detail::distillation_state {
 public:
  ibot_patch() : distillation_state("ibot_patch") {}
  explicit ibot_patch(int64_t out_dim, float student_temperature = 0.1f, float teacher_temperature = 0.04f,
                      float center_momentum = 0.9f)
      : distillation_state("ibot_patch", out_dim, student_temperature, teacher_temperature, center_momentum) {}

  /// The loss against teacher logits (centred and sharpened here).
  ibot_patch_result operator()(const tensor<cpu>& student, const tensor<cpu>& teacher,
                               const std::vector<int64_t>& hidden_per_image) const {
    expect_out_dim();
    expect_shape(teacher, student.shape(), "ibot_patch teacher");
    return with_targets(student, teacher_probabilities(teacher), hidden_per_image);
  }

  /// The loss against ready teacher probabilities (e.g. sinkhorn_knopp's).
  ibot_patch_result with_targets(const tensor<cpu>& student, const tensor<cpu>& targets,
                                 const std::vector<int64_t>& hidden_per_image) const {
    SSL_PROFILE_SCOPE("ibot patch loss");
    namespace ld = losses_detail;
    expect_out_dim();
    const int64_t K = out_dim();
    const std::vector<float> w = ld::ibot_row_weights(student.shape(), targets.shape(), K, hidden_per_image);
    const int64_t M = student.dim(0);
    ibot_patch_result res;
    res.grad_student = tensor<cpu>(student.shape());
    std::vector<double> row_loss(static_cast<size_t>(M));
    const float inv_ts = 1.0f / student_temperature();
    parallel_for(0, M, [&](int64_t r) {
      const float* x = student.data() + r * K;
      const float* t = targets.data() + r * K;
      float* d = res.grad_student.data() + r * K;  // softmax, then the gradient
      for (int64_t k = 0; k < K; ++k) d[k] = x[k] * inv_ts;
      const double lse = ld::softmax_inplace(d, K);
      double loss = 0, tsum = 0;
      for (int64_t k = 0; k < K; ++k) {
        loss += double(t[k]) * (lse - double(x[k]) * inv_ts);
        tsum += t[k];
      }
      const float g = w[size_t(r)] * inv_ts;
      for (int64_t k = 0; k < K; ++k) d[k] = (float(tsum) * d[k] - t[k]) * g;
      row_loss[size_t(r)] = double(w[size_t(r)]) * loss;
    }, 4);
    res.value = float(ld::ordered_sum(row_loss));
    return res;
  }

  /// Device logits (backend/cuda/ibot_patch.cuh, under nvcc): student (M, K) against ready device
  /// teacher probabilities (M, K); `value` stays a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto with_targets(const tensor<B>& student, const tensor<B>& targets,
                    const std::vector<int64_t>& hidden_per_image) const {
    return device_ibot_patch(*this, student, targets, hidden_per_image);
  }
  /// Device logits against device teacher logits, centred with this loss's (host) center.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& student, const tensor<B>& teacher,
                  const std::vector<int64_t>& hidden_per_image) const {
    return device_ibot_patch_logits(*this, student, teacher, hidden_per_image);
  }
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/ibot_patch.cuh"
#endif
