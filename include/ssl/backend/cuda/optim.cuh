#pragma once
// Optimizer steps and EMA on device tensors, one fused kernel per parameter.
// Same formulas as ssl::sgd, ssl::adamw and ssl::ema_update (optim/*.hpp); the optimizer
// classes keep their host bookkeeping (step count, lr scales) and call these per parameter.
#include <cmath>

#include "buffer.cuh"
#include "kernels/optim.cuh"

namespace ssl {

namespace ops {

/// One SGD step on w with gradient g; momentum_buffer may be null when momentum == 0.
inline void sgd_update(tensor<cuda>& w, const tensor<cuda>& g, tensor<cuda>* momentum_buffer, float lr, float momentum,
                       float weight_decay, bool nesterov = false) {
  expect_shape(g, w.shape(), "sgd_update grad");
  check<value_error>(momentum == 0.0f || momentum_buffer, "sgd_update: momentum ", momentum,
                     " needs a momentum buffer, got none");
  if (momentum_buffer) expect_shape(*momentum_buffer, w.shape(), "sgd_update momentum buffer");
  if (w.numel() == 0) return;
  gpu::kernels::sgd_update<<<gpu::kernels::grid_for(w.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      w.data(), g.data(), momentum > 0.0f ? momentum_buffer->data() : nullptr, w.numel(), lr, momentum, weight_decay,
      nesterov);
  SSL_CUDA_CHECK_LAUNCH("sgd_update");
}

/// One AdamW step (step >= 1 is the optimizer's step count after incrementing).
inline void adamw_update(tensor<cuda>& w, const tensor<cuda>& g, tensor<cuda>& exp_avg, tensor<cuda>& exp_avg_sq,
                         int64_t step, float lr, float beta1, float beta2, float eps, float weight_decay) {
  expect_shape(g, w.shape(), "adamw_update grad");
  expect_shape(exp_avg, w.shape(), "adamw_update exp_avg");
  expect_shape(exp_avg_sq, w.shape(), "adamw_update exp_avg_sq");
  check<value_error>(step >= 1, "adamw_update: expected step >= 1, got ", step);
  if (w.numel() == 0) return;
  const double t = double(step);
  const float bc1 = float(1.0 - std::pow(double(beta1), t));
  const float inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(double(beta2), t)));
  gpu::kernels::adamw_update<<<gpu::kernels::grid_for(w.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      w.data(), g.data(), exp_avg.data(), exp_avg_sq.data(), w.numel(), beta1, beta2, eps, 1.0f - lr * weight_decay,
      lr / bc1, inv_sqrt_bc2);
  SSL_CUDA_CHECK_LAUNCH("adamw_update");
}

}  // namespace ops

/// teacher = m * teacher + (1 - m) * student on the device (overload of ssl::ema_update).
inline void ema_update(tensor<cuda>& teacher, const tensor<cuda>& student, float m) {
  check(m >= 0.0f && m <= 1.0f, "ema_update: momentum must be in [0, 1], got ", m);
  expect_shape(student, teacher.shape(), "ema_update student");
  if (teacher.numel() == 0) return;
  gpu::kernels::ema_update<<<gpu::kernels::grid_for(teacher.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      teacher.data(), student.data(), teacher.numel(), m);
  SSL_CUDA_CHECK_LAUNCH("ema_update");
}

}  // namespace ssl
