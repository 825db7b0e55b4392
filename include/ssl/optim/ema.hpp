#pragma once
// Exponential moving average of parameters (BYOL / MoCo / DINO teachers):
//   teacher = m * teacher + (1 - m) * student,   m in [0, 1]
// over two param_lists with the same names and shapes in the same order. The param_list forms
// take any backend; for tensor<cuda> the per-tensor update is backend/cuda/optim.cuh's kernel.
#include <algorithm>

#include "../core/parallel.hpp"
#include "../nn/module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/optim.cuh"
#endif

namespace ssl {

namespace detail {
template <class B>
void check_matching(const param_list<B>& teacher, const param_list<B>& student, const char* what) {
  check<shape_error>(teacher.size() == student.size(), what, ": teacher has ", teacher.size(),
                     " parameters, student has ", student.size());
  for (size_t i = 0; i < teacher.size(); ++i) {
    check<shape_error>(teacher[i].name == student[i].name, what, ": parameter ", i, " is '", teacher[i].name,
                       "' in the teacher but '", student[i].name, "' in the student");
    check<shape_error>(teacher[i].p->value.shape() == student[i].p->value.shape(), what, ": parameter '",
                       teacher[i].name, "' has shape ", teacher[i].p->value.shape(), " in the teacher but ",
                       student[i].p->value.shape(), " in the student");
  }
}
}  // namespace detail

/// teacher = m * teacher + (1 - m) * student for one tensor (shapes must agree).
inline void ema_update(tensor<cpu>& teacher, const tensor<cpu>& student, float m) {
  check(m >= 0.0f && m <= 1.0f, "ema_update: momentum must be in [0, 1], got ", m);
  expect_shape(student, teacher.shape(), "ema_update student");
  constexpr int64_t chunk = 1 << 15;
  const int64_t n = teacher.numel();
  float* __restrict t = teacher.data();
  const float* __restrict s = student.data();
  const float a = 1.0f - m;
  parallel_for(0, (n + chunk - 1) / chunk, [&](int64_t c) {
    const int64_t e = std::min(n, (c + 1) * chunk);
    for (int64_t j = c * chunk; j < e; ++j) t[j] = m * t[j] + a * s[j];
  });
}

/// EMA of every parameter value. Throws shape_error naming the first mismatch of name or shape.
template <class B>
void ema_update(param_list<B>& teacher, const param_list<B>& student, float m) {
  detail::check_matching(teacher, student, "ema_update");
  for (size_t i = 0; i < teacher.size(); ++i) ema_update(teacher[i].p->value, student[i].p->value, m);
}

/// teacher = student (values only), e.g. to initialise a teacher. Same checks as ema_update.
template <class B>
void copy_parameters(param_list<B>& teacher, const param_list<B>& student) {
  detail::check_matching(teacher, student, "copy_parameters");
  for (size_t i = 0; i < teacher.size(); ++i) teacher[i].p->value = student[i].p->value;
}

}  // namespace ssl
