#pragma once
// The state that DINO's and iBOT's self-distillation losses share, written once:
//   student temperature tau_s, teacher temperature tau_t (schedulable), center momentum m and
//   the center c (K), with
//   teacher_probabilities(t)  softmax((t_r - c) / tau_t) per row of the teacher logits (..., K)
//   update_center(t)          c <- m c + (1 - m) mean_r t_r   (after the step)
// ssl::dino and ssl::ibot_patch derive from it publicly; `name` ("dino", "ibot_patch") leads the
// error messages. A default-constructed state has no center (out_dim() == 0) and refuses to run.
#include <cmath>
#include <string>

#include "teacher_targets.hpp"

namespace ssl::losses_detail {

class distillation_state {
 public:
  int64_t out_dim() const { return center_.numel(); }
  float student_temperature() const { return student_t_; }
  float teacher_temperature() const { return teacher_t_; }
  float center_momentum() const { return momentum_; }
  void set_teacher_temperature(float t) {
    expect_temperature(t, " teacher temperature");
    teacher_t_ = t;
  }

  /// The center (K), for checkpoints; `load_center` restores it.
  const tensor<cpu>& center() const { return center_; }
  void load_center(tensor<cpu> c) {
    expect_shape(c, center_.shape(), (std::string(name_) + "::load_center").c_str());
    center_ = std::move(c);
  }

  /// t = softmax((teacher - c) / tau_t) per row: teacher logits (..., K) -> probabilities (..., K).
  tensor<cpu> teacher_probabilities(const tensor<cpu>& teacher) const {
    expect_out_dim();
    return centered_softmax(teacher, center_, teacher_t_);
  }

  /// After the step: c <- m c + (1 - m) mean over all teacher rows. teacher: (..., K).
  void update_center(const tensor<cpu>& teacher) {
    check<shape_error>(teacher.numel() > 0, name_, "::update_center: expected teacher outputs (..., ", out_dim(),
                       "), got ", teacher.shape());
    losses_detail::update_center(center_, teacher, momentum_);
  }

 protected:
  /// A default-constructed loss: the default temperatures, no center.
  explicit distillation_state(const char* name) : name_(name) {}
  distillation_state(const char* name, int64_t out_dim, float student_temperature, float teacher_temperature,
                     float center_momentum)
      : name_(name), student_t_(student_temperature), teacher_t_(teacher_temperature), momentum_(center_momentum) {
    check<value_error>(out_dim > 0, name_, ": expected out_dim > 0, got ", out_dim);
    expect_temperature(student_temperature, " student temperature");
    expect_temperature(teacher_temperature, " teacher temperature");
    check<value_error>(center_momentum >= 0.0f && center_momentum <= 1.0f, name_,
                       " center momentum: expected a value in [0, 1], got ", center_momentum);
    center_ = tensor<cpu>(shape{out_dim}, 0.0f);
  }

  /// Throws shape_error for a default-constructed loss.
  void expect_out_dim() const {
    check<shape_error>(out_dim() > 0, name_, ": default-constructed loss (no out_dim)");
  }

 private:
  /// expect_positive(t, "<name><which>"), the message built only on failure.
  void expect_temperature(float t, const char* which) const {
    if (!(t > 0.0f && std::isfinite(t))) expect_positive(t, (std::string(name_) + which).c_str());
  }

  const char* name_;  // a string literal
  float student_t_ = 0.1f, teacher_t_ = 0.04f, momentum_ = 0.9f;
  tensor<cpu> center_;
};

}  // namespace ssl::losses_detail
