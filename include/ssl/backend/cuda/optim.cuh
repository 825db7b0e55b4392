#pragma once
// Optimizer steps and EMA on device tensors, one fused kernel per parameter.
// Same formulas as ssl::sgd, ssl::adamw, ssl::lars and ssl::ema_update (optim/*.hpp); the optimizer
// classes keep their host bookkeeping (step count, lr scales) and call these per parameter.
// Gradient clipping (ssl::clip_grad_norm / clip_grad_per_param on param_list<cuda>): norms reduced
// on the device in a fixed order (float partials per block, then double), the scale applied there
// too; one synchronisation at the end to return the norms, as the CPU functions do.
#include <cmath>
#include <vector>

#include "../../optim/clip_grad.hpp"  // the CPU references (and param_list)
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

/// Workspace slot of the LARS partial norms (free between ops: stream-ordered reuse).
inline constexpr int lars_slot = gpu::context::workspace_slots - 2;

/// One LARS step on w (SimCLR form, as ssl::lars): u = g + wd w, r = eta |w| / |u| (1 when a norm
/// is 0), b = mu b + lr r u, w -= nesterov ? mu b + lr r u : b. adapted == false (biases and norms
/// under exclude_bias_and_norm): no weight decay and r = 1. The norms never leave the device;
/// trust_ratio (optional, (1)) receives r.
inline void lars_update(tensor<cuda>& w, const tensor<cuda>& g, tensor<cuda>& momentum_buffer, float lr,
                        float momentum, float weight_decay, float eta, bool nesterov = false, bool adapted = true,
                        tensor<cuda>* trust_ratio = nullptr) {
  expect_shape(g, w.shape(), "lars_update grad");
  expect_shape(momentum_buffer, w.shape(), "lars_update momentum buffer");
  check<value_error>(momentum >= 0.0f && momentum < 1.0f, "lars_update: momentum must be in [0, 1), got ", momentum);
  check<value_error>(eta > 0.0f, "lars_update: trust coefficient eta must be > 0, got ", eta);
  if (trust_ratio) expect_shape(*trust_ratio, shape{1}, "lars_update trust_ratio");
  if (w.numel() == 0) return;
  const int64_t n = w.numel();
  const float wd = adapted ? weight_decay : 0.0f;
  const unsigned parts = adapted ? gpu::kernels::norm_blocks(n) : 0u;
  float* ws = gpu::context::get().workspace(lars_slot, 2 * 128 + 2);
  float *partial_u = ws, *partial_w = ws + 128, *scaled_lr = ws + 256;
  if (parts > 0) {
    gpu::kernels::sq_norm_partials<<<parts, gpu::kernels::block_size, 0, gpu::stream()>>>(g.data(), w.data(), wd, n,
                                                                                          partial_u, partial_w);
    SSL_CUDA_CHECK_LAUNCH("sq_norm_partials");
  }
  gpu::kernels::lars_scaled_lr<<<1, 32, 0, gpu::stream()>>>(partial_u, partial_w, int(parts), eta, lr, scaled_lr,
                                                             trust_ratio ? trust_ratio->data() : nullptr);
  SSL_CUDA_CHECK_LAUNCH("lars_scaled_lr");
  gpu::kernels::lars_apply<<<gpu::kernels::grid_for(n), gpu::kernels::block_size, 0, gpu::stream()>>>(
      w.data(), g.data(), momentum_buffer.data(), n, wd, momentum, nesterov, scaled_lr);
  SSL_CUDA_CHECK_LAUNCH("lars_apply");
}

}  // namespace ops

namespace detail {
// Squared-norm partials of each gradient in `which` (indices into params) into one buffer;
// returns the offsets of each parameter's partials (size which.size() + 1).
inline std::vector<int64_t> grad_norm_partials(param_list<cuda>& params, const std::vector<size_t>& which,
                                               gpu::array<float>& partial) {
  std::vector<int64_t> offset(which.size() + 1, 0);
  for (size_t k = 0; k < which.size(); ++k)
    offset[k + 1] = offset[k] + int64_t(gpu::kernels::norm_blocks(params[which[k]].p->grad.numel()));
  partial = gpu::array<float>(std::max<int64_t>(offset.back(), 1));
  for (size_t k = 0; k < which.size(); ++k) {
    const tensor<cuda>& g = params[which[k]].p->grad;
    if (g.numel() == 0) {
      SSL_CUDA_CHECK(cudaMemsetAsync(partial.data() + offset[k], 0, sizeof(float), gpu::stream()));
      continue;
    }
    gpu::kernels::sq_norm_partials<<<unsigned(offset[k + 1] - offset[k]), gpu::kernels::block_size, 0,
                                     gpu::stream()>>>(g.data(), nullptr, 0.0f, g.numel(), partial.data() + offset[k],
                                                      nullptr);
    SSL_CUDA_CHECK_LAUNCH("sq_norm_partials");
  }
  return offset;
}
inline std::vector<size_t> unfrozen(const param_list<cuda>& params) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < params.size(); ++i)
    if (!params[i].p->frozen) idx.push_back(i);
  return idx;
}
inline void scale_grad_device(tensor<cuda>& g, const float* coef) {
  if (g.numel() == 0) return;
  gpu::kernels::scale_by<<<gpu::kernels::grid_for(g.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      g.data(), g.numel(), coef);
  SSL_CUDA_CHECK_LAUNCH("scale_by");
}
}  // namespace detail

/// Clips the global gradient norm of the device parameters to max_norm (frozen ones skipped);
/// returns the norm before clipping (one synchronisation). A non-finite norm throws
/// numeric_error and leaves the gradients unchanged, as the CPU clip_grad_norm.
inline double clip_grad_norm(param_list<cuda>& params, double max_norm) {
  check(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  const std::vector<size_t> which = detail::unfrozen(params);
  if (which.empty()) return 0.0;
  gpu::array<float> partial;
  const std::vector<int64_t> offset = detail::grad_norm_partials(params, which, partial);
  gpu::array<double> norm(1);
  gpu::array<float> coef(1);
  gpu::kernels::clip_coefficient<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      partial.data(), offset.back(), max_norm, norm.data(), coef.data(), true);
  SSL_CUDA_CHECK_LAUNCH("clip_coefficient");
  for (size_t i : which) detail::scale_grad_device(params[i].p->grad, coef.data());
  double host_norm = 0;
  SSL_CUDA_CHECK(cudaMemcpyAsync(&host_norm, norm.data(), sizeof(double), cudaMemcpyDeviceToHost, gpu::stream()));
  gpu::synchronize();
  check<numeric_error>(std::isfinite(host_norm), "clip_grad_norm: the gradient norm is not finite (", host_norm, ")");
  return host_norm;
}

/// Clips each device parameter's gradient norm to max_norm; returns the norms before clipping
/// (0 for frozen parameters; one synchronisation).
inline std::vector<double> clip_grad_per_param(param_list<cuda>& params, double max_norm) {
  check(max_norm > 0, "clip_grad_per_param: max_norm must be > 0, got ", max_norm);
  const std::vector<size_t> which = detail::unfrozen(params);
  std::vector<double> norms(params.size(), 0.0);
  if (which.empty()) return norms;
  gpu::array<float> partial;
  const std::vector<int64_t> offset = detail::grad_norm_partials(params, which, partial);
  gpu::array<double> dnorm(int64_t(which.size()));
  gpu::array<float> coef(int64_t(which.size()));
  for (size_t k = 0; k < which.size(); ++k) {
    const int64_t parts = std::max<int64_t>(offset[k + 1] - offset[k], 1);
    gpu::kernels::clip_coefficient<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
        partial.data() + offset[k], parts, max_norm, dnorm.data() + k, coef.data() + k, false);
    SSL_CUDA_CHECK_LAUNCH("clip_coefficient");
    detail::scale_grad_device(params[which[k]].p->grad, coef.data() + k);
  }
  std::vector<double> host(which.size());
  SSL_CUDA_CHECK(cudaMemcpyAsync(host.data(), dnorm.data(), dnorm.bytes(), cudaMemcpyDeviceToHost, gpu::stream()));
  gpu::synchronize();
  for (size_t k = 0; k < which.size(); ++k) norms[which[k]] = host[k];
  return norms;
}

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
